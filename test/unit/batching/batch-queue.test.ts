import test from 'ava';
import { BatchLatencyModel } from '../../../src/batching/batch-latency-model.js';
import { BatchQueue, type TakeOptions } from '../../../src/batching/batch-queue.js';

interface Item {
  id: string;
  enqueuedAt: number;
  deadline: number;
}

const FAR = 1e9;

function queueOf(items: [id: string, enqueuedAt: number, deadline: number][]): BatchQueue<Item> {
  const q = new BatchQueue<Item>();
  for (const [id, enqueuedAt, deadline] of items) q.push({ id, enqueuedAt, deadline });
  return q;
}

function numbered(n: number, deadline = FAR): BatchQueue<Item> {
  return queueOf(Array.from({ length: n }, (_, i) => [`q${i}`, 0, deadline] as [string, number, number]));
}

/** A latency model that has seen batches of `rows` rows taking `ms` each. */
function latency(rows?: number, ms?: number): BatchLatencyModel {
  const m = new BatchLatencyModel();
  if (rows !== undefined && ms !== undefined) m.observe(rows, ms);
  return m;
}

const opts = (o: Partial<TakeOptions> = {}): TakeOptions => ({ limit: 8, maxDelayMs: 0, latency: latency(), ...o });
const ids = (items: readonly Item[]) => items.map((i) => i.id);

test('an empty queue takes nothing', (t) => {
  const q = new BatchQueue<Item>();
  t.is(q.size, 0);
  t.deepEqual(q.take(0, opts()), { kind: 'empty', expired: [] });
});

test('batches hold at most the limit, in FIFO order, and size counts what is left', (t) => {
  const cases: [queued: number, limit: number, batches: number[]][] = [
    [10, 4, [4, 4, 2]],
    [3, 8, [3]],
    [5, 1, [1, 1, 1, 1, 1]],
    [6, 6, [6]],
  ];
  for (const [queued, limit, sizes] of cases) {
    const q = numbered(queued);
    const taken: string[] = [];
    for (const size of sizes) {
      const r = q.take(0, opts({ limit }));
      if (r.kind !== 'batch') return t.fail(`expected a batch, got ${r.kind}`);
      t.is(r.batch.length, size, `${queued} queued, limit ${limit}`);
      t.deepEqual(r.expired, []);
      taken.push(...ids(r.batch));
    }
    t.is(q.size, 0);
    t.deepEqual(taken, Array.from({ length: queued }, (_, i) => `q${i}`), 'FIFO');
    t.is(q.take(0, opts({ limit })).kind, 'empty');
  }
});

test('FIFO holds across pushes interleaved with takes', (t) => {
  const q = new BatchQueue<Item>();
  const taken: string[] = [];
  let next = 0;
  for (let round = 0; round < 50; round++) {
    for (let k = 0; k < 3; k++) q.push({ id: `q${next++}`, enqueuedAt: 0, deadline: FAR });
    const r = q.take(0, opts({ limit: 2 }));
    if (r.kind === 'batch') taken.push(...ids(r.batch));
  }
  t.is(q.size, 50);
  taken.push(...ids(q.drainAll()));
  t.deepEqual(taken, Array.from({ length: 150 }, (_, i) => `q${i}`));
});

test('FIFO and size survive the internal compaction of a long queue', (t) => {
  const q = numbered(3_000);
  const taken: string[] = [];
  const sizes: number[] = [];
  for (let i = 0; i < 2_500; i++) {
    const r = q.take(0, opts({ limit: 1 }));
    if (r.kind === 'batch') taken.push(...ids(r.batch));
    sizes.push(q.size);
  }
  t.deepEqual(sizes, Array.from({ length: 2_500 }, (_, i) => 3_000 - i - 1));
  q.push({ id: 'late', enqueuedAt: 0, deadline: FAR });
  taken.push(...ids(q.drainAll()));
  t.is(taken.length, 3_001);
  t.deepEqual(taken.slice(0, 3_000), Array.from({ length: 3_000 }, (_, i) => `q${i}`));
  t.is(taken[3_000], 'late');
});

test('delayed batching waits for a partial batch until min(oldest.enqueuedAt + maxDelay, deadline - estimate(1))', (t) => {
  // `batch` is what runs at wakeAt: with 2 ms of slack left and 2 ms per row, only one row still fits.
  const cases: { name: string; enqueuedAt: number; deadline: number; maxDelayMs: number; model: BatchLatencyModel; now: number; wakeAt: number; batch: string[] }[] = [
    { name: 'delay bound, no estimate yet', enqueuedAt: 0, deadline: 100, maxDelayMs: 5, model: latency(), now: 1, wakeAt: 5, batch: ['a', 'b'] },
    { name: 'delay bound, from a later arrival', enqueuedAt: 10, deadline: 100, maxDelayMs: 5, model: latency(1, 2), now: 12, wakeAt: 15, batch: ['a', 'b'] },
    { name: 'deadline bound', enqueuedAt: 0, deadline: 6, maxDelayMs: 5, model: latency(1, 2), now: 1, wakeAt: 4, batch: ['a'] },
    { name: 'deadline bound, no estimate yet', enqueuedAt: 0, deadline: 3, maxDelayMs: 5, model: latency(), now: 0, wakeAt: 3, batch: ['a', 'b'] },
  ];
  for (const c of cases) {
    const q = queueOf([['a', c.enqueuedAt, c.deadline], ['b', c.enqueuedAt, c.deadline]]);
    const r = q.take(c.now, opts({ limit: 4, maxDelayMs: c.maxDelayMs, latency: c.model }));
    t.deepEqual(r, { kind: 'wait', wakeAt: c.wakeAt, expired: [] }, c.name);
    t.is(q.size, 2, `${c.name}: waiting takes nothing`);
    const later = q.take(c.wakeAt, opts({ limit: 4, maxDelayMs: c.maxDelayMs, latency: c.model }));
    t.is(later.kind, 'batch', `${c.name}: at wakeAt the partial batch runs`);
    if (later.kind === 'batch') t.deepEqual(ids(later.batch), c.batch, c.name);
  }
});

test('the delay is measured from the oldest query, not the newest', (t) => {
  const q = queueOf([['old', 0, FAR], ['new', 4, FAR]]);
  const r = q.take(4, opts({ limit: 4, maxDelayMs: 5 }));
  t.deepEqual(r, { kind: 'wait', wakeAt: 5, expired: [] });
});

test('a full queue dispatches at once even with a delay configured', (t) => {
  const q = numbered(6);
  const r = q.take(0, opts({ limit: 4, maxDelayMs: 1_000 }));
  t.is(r.kind, 'batch');
  if (r.kind === 'batch') t.deepEqual(ids(r.batch), ['q0', 'q1', 'q2', 'q3']);
  const rest = q.take(0, opts({ limit: 4, maxDelayMs: 1_000 }));
  t.is(rest.kind, 'wait', 'the remaining partial batch waits');
});

test('without a delay a partial batch dispatches at once', (t) => {
  const q = numbered(2);
  const r = q.take(0, opts({ limit: 4, maxDelayMs: 0 }));
  t.is(r.kind, 'batch');
  if (r.kind === 'batch') t.is(r.batch.length, 2);
});

test('queries that cannot finish by their deadline come back as expired and are never batched', (t) => {
  // estimate(1) = 2 ms, and rowsWithin(ms) = floor(ms / 2).
  const model = latency(1, 2);
  const cases: { name: string; now: number; deadlines: number[]; expired: string[]; kind: 'batch' | 'wait' | 'empty'; batch?: string[] }[] = [
    { name: 'none expired', now: 0, deadlines: [10, 10, 10], expired: [], kind: 'batch', batch: ['q0', 'q1', 'q2'] },
    { name: 'head expired', now: 4.5, deadlines: [5, 6, 20], expired: ['q0', 'q1'], kind: 'batch', batch: ['q2'] },
    { name: 'exactly on time is not expired', now: 4, deadlines: [6, 20], expired: [], kind: 'batch', batch: ['q0'] },
    { name: 'all expired', now: 50, deadlines: [5, 6, 7], expired: ['q0', 'q1', 'q2'], kind: 'empty' },
  ];
  for (const c of cases) {
    const q = queueOf(c.deadlines.map((d, i) => [`q${i}`, 0, d]));
    const r = q.take(c.now, opts({ limit: 8, latency: model }));
    t.is(r.kind, c.kind, c.name);
    t.deepEqual(ids(r.expired), c.expired, c.name);
    if (r.kind === 'batch') {
      t.deepEqual(ids(r.batch), c.batch ?? [], c.name);
      for (const e of r.expired) t.false(r.batch.includes(e), `${c.name}: ${e.id} both expired and batched`);
    }
    t.is(q.size, c.deadlines.length - c.expired.length - (r.kind === 'batch' ? r.batch.length : 0), c.name);
  }
});

test('expired queries are reported alongside a wait', (t) => {
  const q = queueOf([['late', 0, 1], ['ok', 0, 100]]);
  const r = q.take(5, opts({ limit: 4, maxDelayMs: 10, latency: latency(1, 2) }));
  t.is(r.kind, 'wait');
  t.deepEqual(ids(r.expired), ['late']);
  if (r.kind === 'wait') t.is(r.wakeAt, 10);
  t.is(q.size, 1);
});

test('before any latency sample nothing expires until its deadline passes', (t) => {
  const due = queueOf([['due', 0, 10]]).take(10, opts());
  t.deepEqual(ids(due.expired), []);
  t.is(due.kind, 'batch');
  const past = queueOf([['past', 0, 9.9]]).take(10, opts());
  t.deepEqual(ids(past.expired), ['past']);
  t.is(past.kind, 'empty');
});

test("the batch is cut so the oldest query's deadline can still be met", (t) => {
  // After a batch of 10 rows in 5 ms: estimate(k) = 5 * max(1, k / 10), rowsWithin(ms) = floor(2 * ms).
  const model = latency(10, 5);
  const cases: [queued: number, limit: number, slackMs: number, batch: number][] = [
    [30, 32, 8, 16],
    [30, 10, 8, 10],
    [5, 32, 8, 5],
    [30, 32, 5, 10],
    [30, 32, 5.6, 11],
    [30, 32, 100, 30],
  ];
  for (const [queued, limit, slackMs, size] of cases) {
    const now = 1_000;
    const q = numbered(queued, now + slackMs);
    const r = q.take(now, opts({ limit, latency: model }));
    t.is(r.kind, 'batch');
    if (r.kind !== 'batch') continue;
    t.is(r.batch.length, size, `${queued} queued, limit ${limit}, ${slackMs} ms of slack`);
    t.true(now + model.estimate(r.batch.length) <= now + slackMs, 'the batch fits the oldest deadline');
  }
});

test('drainAll returns everything left, in order, and empties the queue', (t) => {
  const q = numbered(5);
  q.take(0, opts({ limit: 2 }));
  t.is(q.size, 3);
  t.deepEqual(ids(q.drainAll()), ['q2', 'q3', 'q4']);
  t.is(q.size, 0);
  t.deepEqual(q.drainAll(), []);
  t.is(q.take(0, opts()).kind, 'empty');
  q.push({ id: 'again', enqueuedAt: 0, deadline: FAR });
  t.is(q.size, 1);
});

// Regression: a query behind the head with an earlier deadline (a model linked to apps with different SLOs, or an
// orphaned query retried from a dead replica) is expired, not batched; take once checked only the head.
test('a query behind the head whose deadline has passed is expired, not batched', (t) => {
  const q = queueOf([['relaxed', 0, 100], ['tight', 1, 6]]);
  const r = q.take(10, opts({ limit: 8, latency: latency(1, 2) }));
  t.deepEqual(ids(r.expired), ['tight']);
  t.is(r.kind, 'batch');
  if (r.kind === 'batch') t.deepEqual(ids(r.batch), ['relaxed']);
});

test('a query doomed only by the estimate runs when it is alone (it costs no one), and is dropped when others wait', (t) => {
  // Batches have taken 10 ms; each query has 5 ms left, so the estimate says none can make it.
  const alone = queueOf([['only', 0, 5]]);
  const r1 = alone.take(0, opts({ latency: latency(1, 10) }));
  t.is(r1.kind, 'batch');
  t.deepEqual(ids(r1.kind === 'batch' ? r1.batch : []), ['only']);
  t.deepEqual(r1.expired, []);
  const crowded = queueOf([['a', 0, 5], ['b', 0, 5], ['c', 0, 100]]);
  const r2 = crowded.take(0, opts({ latency: latency(1, 10) }));
  t.deepEqual(ids(r2.expired), ['a', 'b']);
  t.deepEqual(ids(r2.kind === 'batch' ? r2.batch : []), ['c']);
});

test('cancel: the item stops counting at once, is never run, and leaves no gap in FIFO order', (t) => {
  const items = Array.from({ length: 6 }, (_, i): Item => ({ id: `q${i}`, enqueuedAt: 0, deadline: FAR }));
  const q = new BatchQueue<Item>();
  for (const item of items) q.push(item);
  const [q0, q1, , q3, , q5] = items as [Item, Item, Item, Item, Item, Item];
  const cases: [item: Item, wasWaiting: boolean, sizeAfter: number][] = [
    [q1, true, 5],
    [q1, false, 5],
    [q0, true, 4],
    [q5, true, 3],
  ];
  for (const [item, wasWaiting, sizeAfter] of cases) {
    t.is(q.cancel(item), wasWaiting, item.id);
    t.is(q.size, sizeAfter, `size after cancelling ${item.id}`);
  }
  const r = q.take(0, opts({ limit: 2 }));
  t.deepEqual(ids(r.kind === 'batch' ? r.batch : []), ['q2', 'q3']);
  t.is(q.cancel(q3), false, 'taken already: not waiting');
  t.is(q.size, 1);
  t.deepEqual(ids(q.drainAll()), ['q4'], 'drainAll leaves cancelled items out');
});

test('cancelled items do not count toward delayed batching or the lone-query probe', (t) => {
  // Four queued, limit 4, delay 5 ms: a full batch runs at once; with one cancelled it waits to fill.
  const q = numbered(4);
  const [first] = q.drainAll();
  for (const item of [first as Item, ...Array.from({ length: 3 }, (_, i): Item => ({ id: `r${i}`, enqueuedAt: 0, deadline: FAR }))]) q.push(item);
  q.cancel(first as Item);
  t.is(q.take(0, opts({ limit: 4, maxDelayMs: 5 })).kind, 'wait');
  // A query doomed by the estimate runs when it is the only one left: cancelled ones behind it do not count.
  const lone = queueOf([['doomed', 0, 5], ['gone', 0, 100]]);
  const [doomed, gone] = lone.drainAll();
  lone.push(doomed as Item);
  lone.push(gone as Item);
  lone.cancel(gone as Item);
  const r = lone.take(0, opts({ latency: latency(1, 10) }));
  t.deepEqual(ids(r.kind === 'batch' ? r.batch : []), ['doomed']);
});

test('earliest deadline first: a query due sooner is batched ahead of ones queued before it; equal deadlines keep arrival order', (t) => {
  const q = queueOf([
    ['relaxed1', 0, 100],
    ['relaxed2', 1, 100],
    ['tight', 2, 30],
    ['middle', 3, 60],
    ['tight2', 4, 30],
  ]);
  t.deepEqual(q.deadlines(), [30, 30, 60, 100, 100]);
  const r = q.take(5, opts({ limit: 3 }));
  t.deepEqual(ids(r.kind === 'batch' ? r.batch : []), ['tight', 'tight2', 'middle']);
  const rest = q.take(5, opts({ limit: 3 }));
  t.deepEqual(ids(rest.kind === 'batch' ? rest.batch : []), ['relaxed1', 'relaxed2']);
});

test('deadlines() leaves cancelled items out', (t) => {
  const items = Array.from({ length: 3 }, (_, i): Item => ({ id: `q${i}`, enqueuedAt: 0, deadline: 10 * (i + 1) }));
  const q = new BatchQueue<Item>();
  for (const item of items) q.push(item);
  q.cancel(items[1] as Item);
  t.deepEqual(q.deadlines(), [10, 30]);
});

test('priorities: a more urgent level is batched before a less urgent one; 0 and absent are the default, after every named level', (t) => {
  const q = new BatchQueue<Item & { priority?: number }>();
  const push = (id: string, deadline: number, priority?: number) => q.push({ id, enqueuedAt: 0, deadline, ...(priority === undefined ? {} : { priority }) });
  push('default-early', 10);
  push('low-3', 50, 3);
  push('zero', 5, 0);
  push('high-1', 100, 1);
  push('mid-2-late', 90, 2);
  push('mid-2-early', 80, 2);
  push('high-1-again', 100, 1);
  t.deepEqual(q.levels(), [1, 1, 2, 2, 3, Number.POSITIVE_INFINITY, Number.POSITIVE_INFINITY]);
  t.deepEqual(q.deadlines(), [100, 100, 80, 90, 50, 5, 10], 'earliest deadline first within a level, FIFO among equals');
  const taken = q.take(0, opts({ limit: 4 }));
  t.is(taken.kind, 'batch');
  if (taken.kind === 'batch') t.deepEqual(ids(taken.batch), ['high-1', 'high-1-again', 'mid-2-early', 'mid-2-late']);
});

test('peek: the first item waiting, cancelled ones skipped; undefined when none waits', (t) => {
  const q = new BatchQueue<Item>();
  t.is(q.peek(), undefined, 'empty');
  const items = Array.from({ length: 3 }, (_, i): Item => ({ id: `q${i}`, enqueuedAt: 0, deadline: 10 * (i + 1) }));
  for (const item of items) q.push(item);
  t.is(q.peek()?.id, 'q0');
  q.cancel(items[0] as Item);
  t.is(q.peek()?.id, 'q1', 'a cancelled head is skipped');
  t.is(q.size, 2, 'peeking takes nothing');
  q.cancel(items[1] as Item);
  q.cancel(items[2] as Item);
  t.is(q.peek(), undefined, 'all cancelled');
  const r = numbered(3);
  r.take(0, opts({ limit: 2 }));
  t.is(r.peek()?.id, 'q2', 'after a take: the next one');
});

test('levels() leaves cancelled items out, in the order of deadlines()', (t) => {
  const q = new BatchQueue<Item & { priority?: number }>();
  const a = { id: 'a', enqueuedAt: 0, deadline: 10, priority: 1 };
  const b = { id: 'b', enqueuedAt: 0, deadline: 20, priority: 2 };
  const c = { id: 'c', enqueuedAt: 0, deadline: 30 };
  for (const item of [a, b, c]) q.push(item);
  q.cancel(b);
  t.deepEqual(q.levels(), [1, Number.POSITIVE_INFINITY]);
  t.deepEqual(q.deadlines(), [10, 30]);
});

test('a cancelled item is never returned, neither batched nor expired, wherever it is in the queue', (t) => {
  // Cancelled in the middle of what would be one batch: the batch closes over it.
  const items = Array.from({ length: 4 }, (_, i): Item => ({ id: `q${i}`, enqueuedAt: 0, deadline: FAR }));
  const q = new BatchQueue<Item>();
  for (const item of items) q.push(item);
  q.cancel(items[1] as Item);
  const r = q.take(0, opts({ limit: 3 }));
  t.deepEqual(ids(r.kind === 'batch' ? r.batch : []), ['q0', 'q2', 'q3']);
  // Cancelled at the head with its deadline passed: not handed back as expired (nobody is waiting for it).
  const head = queueOf([['gone', 0, 5], ['ok', 0, 100]]);
  const [gone] = head.drainAll();
  head.push(gone as Item);
  head.push({ id: 'ok', enqueuedAt: 0, deadline: 100 });
  head.cancel(gone as Item);
  const r2 = head.take(10, opts({ latency: latency(1, 2) }));
  t.deepEqual(ids(r2.expired), []);
  t.deepEqual(ids(r2.kind === 'batch' ? r2.batch : []), ['ok']);
});

test('a cancelled head does not set the delayed-batching wake-up: the first live item does', (t) => {
  const q = new BatchQueue<Item>();
  const old: Item = { id: 'old', enqueuedAt: 0, deadline: FAR };
  q.push(old);
  q.push({ id: 'new', enqueuedAt: 4, deadline: FAR });
  q.cancel(old);
  t.deepEqual(q.take(4, opts({ limit: 4, maxDelayMs: 5 })), { kind: 'wait', wakeAt: 9, expired: [] });
});

test('an item flagged cancelled by its owner (without telling the queue) is dropped unrun too', (t) => {
  const q = new BatchQueue<Item & { cancelled?: boolean }>();
  const flagged = { id: 'flagged', enqueuedAt: 0, deadline: FAR, cancelled: false };
  q.push({ id: 'a', enqueuedAt: 0, deadline: FAR });
  q.push(flagged);
  q.push({ id: 'b', enqueuedAt: 0, deadline: FAR });
  flagged.cancelled = true;
  const r = q.take(0, opts({ limit: 8 }));
  t.deepEqual(ids(r.kind === 'batch' ? r.batch : []), ['a', 'b']);
  t.deepEqual(r.expired, []);
});

test('a queue holding exactly the limit dispatches at once, even with a delay configured', (t) => {
  const q = numbered(4);
  const r = q.take(0, opts({ limit: 4, maxDelayMs: 1_000 }));
  t.is(r.kind, 'batch');
  if (r.kind === 'batch') t.is(r.batch.length, 4);
});

test('behind a more urgent head, a query that can no longer make its deadline is expired, not left for later', (t) => {
  // estimate(1) = 2 ms. The urgent head is due late; the plain query behind it is due at 6.
  const make = () => {
    const q = new BatchQueue<Item & { priority?: number }>();
    q.push({ id: 'urgent', enqueuedAt: 0, deadline: 100, priority: 1 });
    q.push({ id: 'plain', enqueuedAt: 0, deadline: 6 });
    return q;
  };
  const cases: [what: string, now: number][] = [
    ['its deadline has passed', 10],
    ['its deadline has not passed, but a batch takes longer than what is left', 5],
  ];
  for (const [what, now] of cases) {
    const q = make();
    const r = q.take(now, opts({ limit: 8, latency: latency(1, 2) }));
    t.deepEqual(ids(r.expired), ['plain'], what);
    t.deepEqual(ids(r.kind === 'batch' ? r.batch : []), ['urgent'], what);
    t.is(q.size, 0, `${what}: nothing left behind`);
  }
});

test('deadlinesInto and levelsInto rewrite the array they are given: same contents as deadlines() and levels(), its old length gone', (t) => {
  const queue = new BatchQueue<{ enqueuedAt: number; deadline: number; priority?: number; cancelled?: boolean }>();
  const items = [
    { enqueuedAt: 0, deadline: 30 },
    { enqueuedAt: 0, deadline: 10, priority: 2 },
    { enqueuedAt: 0, deadline: 20 },
  ];
  for (const item of items) queue.push(item);
  queue.cancel(items[2] as (typeof items)[number]);
  const deadlines = [7, 7, 7, 7, 7];
  const levels = [7, 7, 7, 7, 7];
  t.is(queue.deadlinesInto(deadlines), deadlines, 'the same array back');
  t.deepEqual(deadlines, [10, 30]);
  t.deepEqual(deadlines, queue.deadlines());
  t.is(queue.levelsInto(levels), levels);
  t.deepEqual(levels, [2, Number.POSITIVE_INFINITY]);
  t.deepEqual(levels, queue.levels());
  queue.take(0, { limit: 8, maxDelayMs: 0, latency: { estimate: () => 1, rowsWithin: () => 8 } });
  t.deepEqual(queue.deadlinesInto(deadlines), [], 'emptied');
  t.is(deadlines.length, 0);
});
