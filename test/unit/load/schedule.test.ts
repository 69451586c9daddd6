import test from 'ava';
import { MAX_SCHEDULE_RATES, parseRateSchedule } from '../../../src/load/schedule.js';

test('rate schedules: one rate, lists, geometric and arithmetic ranges', (t) => {
  const cases: [string, number[]][] = [
    ['2000', [2000]],
    [' 1500 ', [1500]],
    ['1000,2000,4000', [1000, 2000, 4000]],
    ['1000..8000x2', [1000, 2000, 4000, 8000]],
    ['1000..9000x2', [1000, 2000, 4000, 8000]],
    ['1000..20000x1.5', [1000, 1500, 2250, 3375, 5063, 7594, 11391, 17086]],
    ['1000..4000*2', [1000, 2000, 4000]],
    ['1000..5000+1000', [1000, 2000, 3000, 4000, 5000]],
    ['500,1000..4000x2', [500, 1000, 2000, 4000]],
    ['100..100x2', [100]],
    ['0.5..2x2', [1, 2]],
  ];
  for (const [text, rates] of cases) t.deepEqual(parseRateSchedule(text), rates, text);
});

test('bad schedules are refused with a message naming the bad piece', (t) => {
  const cases: [string, RegExp][] = [
    ['', /must not be empty/],
    ['abc', /"abc" is not a positive number or a range/],
    ['1000,-5', /"-5"/],
    ['0', /"0"/],
    ['1000..500x2', /must not fall/],
    ['1000..5000x1', /factor must be above 1/],
    ['1000..5000x', /"1000..5000x"/],
    ['0.2', /at least 1 query per second/],
    [`1..${MAX_SCHEDULE_RATES * 10}+1`, /more than 200 rates/],
  ];
  for (const [text, message] of cases) t.throws(() => parseRateSchedule(text), { instanceOf: RangeError, message }, text);
});
