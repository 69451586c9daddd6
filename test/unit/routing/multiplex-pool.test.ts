import test from 'ava';
import { MultiplexPool, type Multiplexed } from '../../../src/routing/multiplex-pool.js';

/** A model version that records its suspensions; `hold` keeps its suspend pending until the test releases it. */
function version(key: string, log: string[], hold = false): Multiplexed & { release(): void } {
  let release = (): void => {};
  return {
    key,
    suspend() {
      log.push(`suspend ${key}`);
      return hold ? new Promise<void>((resolve) => (release = resolve)) : Promise.resolve();
    },
    release: () => release(),
  };
}

/** Admits and loads `member` (what a replica set does when it starts its replicas). */
async function load(pool: MultiplexPool, member: Multiplexed): Promise<void> {
  await pool.admit(member);
  pool.loaded(member);
}

test('the pool evicts the least recently used loaded version to make room', async (t) => {
  const log: string[] = [];
  const pool = new MultiplexPool(2);
  const [a, b, c] = ['a@1', 'b@1', 'c@1'].map((k) => version(k, log)) as unknown as [Multiplexed, Multiplexed, Multiplexed];
  await load(pool, a);
  await load(pool, b);
  t.deepEqual(pool.active, ['a@1', 'b@1']);
  t.deepEqual(log, [], 'two slots, two versions: no eviction');
  pool.touch(a); // a query for a: now b is the least recently used
  await load(pool, c);
  t.deepEqual(log, ['suspend b@1']);
  t.deepEqual(pool.active, ['a@1', 'c@1']);
  t.is(pool.evictions, 1);
  // b comes back on its next query and pushes out a, which c's load made the older of the two.
  await load(pool, b);
  t.deepEqual(log, ['suspend b@1', 'suspend a@1']);
  t.deepEqual(pool.active.sort(), ['b@1', 'c@1']);
});

test('admitting a version that holds a slot evicts nothing', async (t) => {
  const log: string[] = [];
  const pool = new MultiplexPool(1);
  const a = version('a@1', log);
  await load(pool, a);
  await load(pool, a);
  t.deepEqual(log, []);
  t.is(pool.evictions, 0);
});

test('a released slot is free again: no eviction needed', async (t) => {
  const log: string[] = [];
  const pool = new MultiplexPool(1);
  const a = version('a@1', log);
  const b = version('b@1', log);
  await load(pool, a);
  pool.released(a); // a scaled to zero on its own (idle) or its load failed
  await load(pool, b);
  t.deepEqual(log, []);
  t.deepEqual(pool.active, ['b@1']);
});

test('a version still loading is never chosen to make room', async (t) => {
  const log: string[] = [];
  const pool = new MultiplexPool(1);
  const a = version('a@1', log);
  const b = version('b@1', log);
  await pool.admit(a); // a's replicas are starting: its slot is reserved, not yet loaded
  await pool.admit(b);
  t.deepEqual(log, [], 'nothing loaded to evict: b is let in, briefly over the bound');
  t.deepEqual(pool.active, ['a@1', 'b@1']);
});

test('admission waits until the evicted version has drained', async (t) => {
  const log: string[] = [];
  const pool = new MultiplexPool(1);
  const a = version('a@1', log, true);
  const b = version('b@1', log);
  await load(pool, a);
  let admitted = false;
  const admitting = pool.admit(b).then(() => (admitted = true));
  await Promise.resolve();
  await Promise.resolve();
  t.false(admitted, 'b waits for a to finish what it holds');
  a.release();
  await admitting;
  t.true(admitted);
});

test('a removed version no longer holds or competes for a slot', async (t) => {
  const log: string[] = [];
  const pool = new MultiplexPool(1);
  const a = version('a@1', log);
  const b = version('b@1', log);
  await load(pool, a);
  pool.remove(a);
  await load(pool, b);
  t.deepEqual(log, []);
  t.deepEqual(pool.active, ['b@1']);
});

test('touch, loaded and released on a version the pool does not hold change nothing (a stopped set may still report)', (t) => {
  const pool = new MultiplexPool(1);
  const stranger = version('x@1', []);
  t.notThrows(() => pool.touch(stranger));
  t.notThrows(() => pool.loaded(stranger));
  t.notThrows(() => pool.released(stranger));
  t.deepEqual(pool.active, []);
});

test('admitting a version that already holds its slot changes nothing: it stays evictable, nothing else is evicted', async (t) => {
  const log: string[] = [];
  const pool = new MultiplexPool(1);
  const [a, b] = ['a@1', 'b@1'].map((k) => version(k, log)) as unknown as [Multiplexed, Multiplexed];
  await load(pool, a);
  await pool.admit(a);
  t.deepEqual(pool.active, ['a@1']);
  t.deepEqual(log, []);
  await load(pool, b);
  t.deepEqual(log, ['suspend a@1'], 'a is still loaded (not loading again), so it makes room');
  t.deepEqual(pool.active, ['b@1']);
});
