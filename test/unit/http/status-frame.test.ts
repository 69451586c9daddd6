import test from 'ava';
import { histogramQuantile, policyWeights, statusFrame, type AppReading, type Reading } from '../../../src/http/status/status-frame.js';

const bounds = [0.001, 0.005, 0.01, 0.02, Number.POSITIVE_INFINITY];

test('quantiles come from the buckets observed between two readings, linear within a bucket', (t) => {
  const before = { bounds, counts: [10, 10, 10, 10, 10] };
  // 100 new observations: 50 in (1, 5] ms, 49 in (5, 10] ms, 1 in (10, 20] ms.
  const after = { bounds, counts: [10, 60, 109, 110, 110] };
  t.is(histogramQuantile(0.5, before, after), 5);
  t.is(Number(histogramQuantile(0.99, before, after)?.toFixed(6)), 10);
  t.is(Number(histogramQuantile(0.25, before, after)?.toFixed(6)), 3);
  t.is(histogramQuantile(0.5, after, after), null, 'nothing observed');
  t.is(histogramQuantile(0.99, undefined, { bounds, counts: [0, 0, 0, 0, 4] }), 20, 'past the last finite bound: that bound');
});

test('policy weights are the softmax of the linked models log weights; per-user policies report their users', (t) => {
  const exp4 = { kind: 'exp4', logWeights: { a: 0, b: Math.log(3), gone: 5 } };
  const rounded = (r: ReturnType<typeof policyWeights>) => ({ ...r, weights: Object.fromEntries(Object.entries(r.weights ?? {}).map(([m, w]) => [m, Number(w.toFixed(9))])) });
  t.deepEqual(rounded(policyWeights(exp4, ['a', 'b'])), { weights: { a: 0.25, b: 0.75 }, users: null });
  t.deepEqual(rounded(policyWeights({ kind: 'keyed', shared: exp4, users: [['u1', null], ['u2', null]] }, ['a', 'b'])), { weights: { a: 0.25, b: 0.75 }, users: 2 });
  t.deepEqual(policyWeights(null, ['a']), { weights: null, users: null });
  t.deepEqual(policyWeights({ kind: 'exp3', logWeights: { x: 0 } }, ['a']), { weights: null, users: null });
});

const app = (over: Partial<AppReading>): AppReading => ({
  name: 'digits',
  sloMs: 20,
  linkedModels: ['m'],
  policy: 'static',
  policyState: null,
  queries: 0,
  answered: 0,
  defaults: 0,
  refused: 0,
  cacheHits: 0,
  cacheMisses: 0,
  latency: undefined,
  ...over,
});
const replica = { name: 'm@1#0', status: 'running', ready: true, batchLimit: 8, outstanding: 3, restarts: 0, batches: 10, rows: 40 };
const reading = (at: number, a: Partial<AppReading>, batches: number, rows: number): Reading => ({
  at,
  apps: [app(a)],
  models: [{ name: 'm', currentVersion: '1', linkedApps: ['digits'], versions: [{ version: '1', replicas: [{ ...replica, batches, rows }] }] }],
});

test('a frame turns two readings into rates over the interval', (t) => {
  const before = reading(1000, { queries: 100, answered: 90, defaults: 5, refused: 10, cacheHits: 20, cacheMisses: 80 }, 10, 40);
  const after = reading(3000, { queries: 500, answered: 470, defaults: 24, refused: 30, cacheHits: 120, cacheMisses: 180 }, 30, 200);
  const frame = statusFrame(before, after);
  t.is(frame.intervalMs, 2000);
  const a = frame.apps[0];
  t.is(a?.queriesPerSecond, 200);
  t.is(a?.defaultRate, 19 / 380);
  t.is(a?.refusalRate, 20 / 400);
  t.is(a?.cacheHitRate, 0.5);
  const r = frame.models[0]?.versions[0];
  t.true(r?.current);
  t.deepEqual(r?.replicas[0], { name: 'm@1#0', status: 'running', ready: true, batchLimit: 8, queued: 3, restarts: 0, meanBatch: 8 });
});

test("a page's first frame has no rates yet, and an idle replica has no mean batch", (t) => {
  const only = reading(1000, { queries: 100, answered: 100 }, 10, 40);
  const frame = statusFrame(undefined, only);
  t.is(frame.intervalMs, 0);
  t.is(frame.apps[0]?.queriesPerSecond, 0);
  t.is(frame.apps[0]?.p99Ms, null);
  t.is(frame.models[0]?.versions[0]?.replicas[0]?.meanBatch, null);
  t.is(statusFrame(only, { ...only, at: 2000 }).models[0]?.versions[0]?.replicas[0]?.meanBatch, null);
});
