import test from 'ava';
import { ArrivalRate } from '../../../src/batching/arrival-rate.js';

test('a steady rate reads as itself; silence fades it by e every tau', (t) => {
  const rate = new ArrivalRate(100);
  t.is(rate.perMs(0), 0, 'nothing arrived yet');
  for (let ms = 0; ms < 2_000; ms++) rate.arrive(ms, 2);
  const steady = rate.perMs(2_000);
  t.true(Math.abs(steady - 2) < 0.05, `two a millisecond read as ${steady}`);
  t.true(Math.abs(rate.perMs(2_100) / steady - Math.exp(-1)) < 1e-9, 'after one tau of silence: 1/e of it');
  t.true(rate.perMs(3_000) < 2 * Math.exp(-9), 'after ten: nearly nothing');
  t.is(rate.perMs(1_500), rate.perMs(1_999), 'a time before the last arrival reads as the last arrival, not extrapolated backwards');
});

test('a burst counts at once; bad time constants are refused', (t) => {
  const rate = new ArrivalRate(50);
  rate.arrive(10, 100);
  t.is(rate.perMs(10), 2, '100 arrivals over a 50 ms time constant');
  t.throws(() => new ArrivalRate(0), { instanceOf: RangeError, message: /positive/ });
  t.throws(() => new ArrivalRate(Number.NaN), { instanceOf: RangeError });
  t.throws(() => new ArrivalRate(Number.POSITIVE_INFINITY), { instanceOf: RangeError });
});
