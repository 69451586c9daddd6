import test from 'ava';
import { leastOutstanding, type ReplicaLoad } from '../../../src/routing/balancer.js';

/** `3` is a ready replica with 3 outstanding; `'x3'` is one that is not ready. */
const replicas = (spec: (number | `x${number}`)[]): ReplicaLoad[] =>
  spec.map((s) => (typeof s === 'number' ? { ready: true, outstanding: s } : { ready: false, outstanding: Number(s.slice(1)) }));

test('leastOutstanding picks the ready replica with the least work', (t) => {
  const cases: [name: string, spec: (number | `x${number}`)[], start: number, exclude: number[], chosen: number][] = [
    ['no replicas', [], 0, [], -1],
    ['one replica', [7], 0, [], 0],
    ['least wins', [3, 1, 2], 0, [], 1],
    ['least wins from any start', [3, 1, 2], 2, [], 1],
    ['least is last', [5, 4, 0], 0, [], 2],
    ['not ready is skipped even when idle', ['x0', 3, 2], 0, [], 2],
    ['none ready', ['x0', 'x1'], 0, [], -1],
    ['excluded is skipped', [0, 1, 2], 0, [0], 1],
    ['excluded and not ready', ['x0', 1, 2], 0, [1], 2],
    ['all excluded', [0, 1], 0, [0, 1], -1],
    ['ties go to start', [2, 2, 2], 1, [], 1],
    ['ties go to the first at or after start', [0, 5, 0], 1, [], 2],
    ['ties wrap around', [0, 5, 5], 1, [], 0],
    ['start past the end wraps', [2, 2, 2], 5, [], 2],
    ['tie after start skips not-ready', [1, 'x1', 1], 1, [], 2],
  ];
  for (const [name, spec, start, exclude, chosen] of cases) {
    t.is(leastOutstanding(replicas(spec), start, new Set(exclude)), chosen, name);
  }
});

test('exclude and start are optional', (t) => {
  t.is(leastOutstanding(replicas([2, 2, 1])), 2);
  t.is(leastOutstanding(replicas([2, 2])), 0);
});

test('rotating start spreads equal load round-robin', (t) => {
  const equal = replicas([4, 4, 4]);
  t.deepEqual(
    Array.from({ length: 6 }, (_, start) => leastOutstanding(equal, start)),
    [0, 1, 2, 0, 1, 2],
  );
  const withDown = replicas([4, 'x0', 4]);
  t.deepEqual(
    Array.from({ length: 4 }, (_, start) => leastOutstanding(withDown, start)),
    [0, 2, 2, 0],
  );
});

test('the balancer reads its input and changes nothing', (t) => {
  const input = Object.freeze(replicas([1, 0]).map((r) => Object.freeze(r)));
  t.is(leastOutstanding(input, 0, new Set([1])), 0);
});
