import test from 'ava';
import { readRecovery } from '../../../bench/lib/recovery.js';
import type { TimelinePoint } from '../../../src/load/load-run.js';

const OVER = 2400;
const NORMAL = 240;
const options = { overloadRate: OVER, normalRate: NORMAL, sloMs: 20, cleanIntervals: 4 };

/**
 * A timeline of 250 ms intervals: `overload` intervals at 3x, then one per letter of `normal`: `.` clean,
 * `f` one failure (a refusal or default), `s` a p99 over the SLO, `0` no answers at all.
 */
function timeline(overload: number, normal: string): TimelinePoint[] {
  const points: TimelinePoint[] = [];
  for (let i = 1; i <= overload; i++) points.push({ t: i * 0.25, offered: OVER, throughput: 900, p99: 18, errors: 300, meanBatch: 9 });
  [...normal].forEach((c, i) =>
    points.push({
      t: (overload + i + 1) * 0.25,
      offered: NORMAL,
      throughput: c === '0' ? 0 : 240,
      p99: c === 's' ? 31 : c === '0' ? null : 9,
      errors: c === 'f' ? 1 : 0,
      meanBatch: 1,
    }),
  );
  return points;
}

test('clean from the first interval: recovered at 0 s, nothing after', (t) => {
  t.deepEqual(readRecovery(timeline(8, '............'), options), { seconds: 0, allCleanAfterS: 0, laterBadIntervals: [] });
});

test('recovered at the start of the first clean second after the overload, not at its first clean interval', (t) => {
  // Intervals 0-0.25 and 0.5-0.75 are bad, 0.25-0.5 is clean but alone: the first run of four starts at 0.75 s.
  const r = readRecovery(timeline(8, 'f.s.........'), options);
  t.is(r?.seconds, 0.75);
  t.is(r?.allCleanAfterS, 0.75);
  t.deepEqual(r?.laterBadIntervals, []);
});

test('an isolated blip seconds later does not move the recovery: it is listed with what went wrong', (t) => {
  // The README's run: one interval with failures 7.25 s into an otherwise clean 0.3x phase.
  const normal = '.'.repeat(29) + 'f' + '.'.repeat(10);
  const r = readRecovery(timeline(40, normal), options);
  t.is(r?.seconds, 0);
  t.is(r?.allCleanAfterS, 7.5, 'the older reading: every interval after 7.5 s is clean');
  t.deepEqual(r?.laterBadIntervals, [{ fromS: 7.25, toS: 7.5, failures: 1, p99Ms: 9, answersPerS: 240 }]);
});

test('later bad intervals list slow ones and empty ones too, in order', (t) => {
  const r = readRecovery(timeline(4, 'ff....s..0..'), options);
  t.is(r?.seconds, 0.5);
  t.deepEqual(
    r?.laterBadIntervals.map((b) => [b.fromS, b.failures, b.p99Ms, b.answersPerS]),
    [
      [1.5, 0, 31, 240],
      [2.25, 0, null, 0],
    ],
  );
});

test('no clean second in the phase: not recovered, and a clean run cut short by the end does not count', (t) => {
  t.deepEqual(readRecovery(timeline(4, '.f.f.f.f'), options), { seconds: null, allCleanAfterS: null, laterBadIntervals: [] });
  t.deepEqual(readRecovery(timeline(4, 'fffff...'), options), { seconds: null, allCleanAfterS: 1.25, laterBadIntervals: [] });
});

test('a missing phase reads as undefined; intervals at other rates are skipped', (t) => {
  t.is(readRecovery(timeline(0, '....'), options), undefined);
  t.is(readRecovery(timeline(4, ''), options), undefined);
  const points = timeline(4, '....');
  points.splice(5, 0, { t: 1.3, offered: 99, throughput: 1, p99: 99, errors: 5, meanBatch: null });
  t.is(readRecovery(points, options)?.seconds, 0);
});
