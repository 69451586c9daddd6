import { performance } from 'node:perf_hooks';
import test from 'ava';
import { ManualClock, systemClock } from '../../../src/kernel/clock.js';

test('ManualClock starts at the given time and advance moves it by exactly ms', (t) => {
  const clock = new ManualClock(1_000);
  t.is(clock.now(), 1_000);
  clock.advance(250);
  t.is(clock.now(), 1_250);
  clock.advance(0);
  t.is(clock.now(), 1_250);
  t.is(new ManualClock().now(), 0);
});

test('timers fire in due-time order, ties in the order they were set, each seeing its own due time', (t) => {
  const clock = new ManualClock();
  const fired: [string, number][] = [];
  const set = (label: string, ms: number) => clock.setTimeout(() => fired.push([label, clock.now()]), ms);
  set('c', 30);
  set('a', 10);
  set('b1', 20);
  set('b2', 20);
  set('zero', 0);
  clock.advance(100);
  t.deepEqual(fired, [
    ['zero', 0],
    ['a', 10],
    ['b1', 20],
    ['b2', 20],
    ['c', 30],
  ]);
  t.is(clock.now(), 100);
  t.is(clock.pendingTimers, 0);
});

test('a timer fires only once its due time is reached, and exactly at the boundary', (t) => {
  const clock = new ManualClock();
  let fired = 0;
  clock.setTimeout(() => fired++, 50);
  clock.advance(49);
  t.is(fired, 0);
  t.is(clock.pendingTimers, 1);
  clock.advance(1);
  t.is(fired, 1);
  clock.advance(1_000);
  t.is(fired, 1, 'a fired timer does not fire again');
});

test('negative delays are treated as 0', (t) => {
  const clock = new ManualClock(10);
  let at = -1;
  clock.setTimeout(() => { at = clock.now(); }, -5);
  clock.advance(0);
  t.is(at, 10);
});

test('a cancelled timer never fires and no longer counts as pending', (t) => {
  const clock = new ManualClock();
  const fired: string[] = [];
  const keep = clock.setTimeout(() => fired.push('keep'), 10);
  const drop = clock.setTimeout(() => fired.push('drop'), 5);
  t.is(clock.pendingTimers, 2);
  drop.cancel();
  t.is(clock.pendingTimers, 1);
  clock.advance(20);
  t.deepEqual(fired, ['keep']);
  keep.cancel();
  t.is(clock.pendingTimers, 0);
});

test('a timer cancelled by an earlier timer in the same advance does not fire', (t) => {
  const clock = new ManualClock();
  const fired: string[] = [];
  const later = clock.setTimeout(() => fired.push('later'), 20);
  clock.setTimeout(() => { fired.push('first'); later.cancel(); }, 10);
  clock.advance(30);
  t.deepEqual(fired, ['first']);
});

test('timers set inside a callback are scheduled from its due time and fire in the same advance if due', (t) => {
  const clock = new ManualClock();
  const fired: [string, number][] = [];
  clock.setTimeout(() => {
    fired.push(['outer', clock.now()]);
    clock.setTimeout(() => fired.push(['inner', clock.now()]), 15);
    clock.setTimeout(() => fired.push(['late', clock.now()]), 100);
  }, 10);
  clock.setTimeout(() => fired.push(['other', clock.now()]), 30);
  clock.advance(40);
  t.deepEqual(fired, [
    ['outer', 10],
    ['inner', 25],
    ['other', 30],
  ]);
  t.is(clock.pendingTimers, 1);
  clock.advance(70);
  t.deepEqual(fired.at(-1), ['late', 110]);
});

/** Resolves after `ms` of real time (Node's own timer, independent of the clock under test). */
const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

test('systemClock.now reads performance.now (milliseconds, monotonic, fractional)', async (t) => {
  const before = performance.now();
  const now = systemClock.now();
  const after = performance.now();
  t.true(before <= now && now <= after, `${before} <= ${now} <= ${after}`);
  await sleep(5);
  t.true(systemClock.now() - now >= 4, 'it moves with real time');
});

test('systemClock timers fire once, in order of their delays, no earlier than asked', async (t) => {
  const fired: string[] = [];
  const start = performance.now();
  let elapsed40 = 0;
  systemClock.setTimeout(() => {
    fired.push('40');
    elapsed40 = performance.now() - start;
  }, 40);
  systemClock.setTimeout(() => fired.push('10'), 10);
  systemClock.setTimeout(() => fired.push('0'), 0);
  // A negative delay counts as 0: it fires before the 10 ms timer, which was set earlier.
  systemClock.setTimeout(() => fired.push('-25'), -25);
  t.deepEqual(fired, [], 'never synchronously');
  await sleep(150);
  t.deepEqual(fired, ['0', '-25', '10', '40']);
  // Node may round a timer down by up to 1 ms; no upper bound (a loaded machine delays timers).
  t.true(elapsed40 >= 39, `the 40 ms timer fired after ${elapsed40} ms`);
});

test('a cancelled systemClock timer never fires; cancelling twice or after firing is harmless', async (t) => {
  const fired: string[] = [];
  const cancelled = systemClock.setTimeout(() => fired.push('cancelled'), 5);
  const kept = systemClock.setTimeout(() => fired.push('kept'), 5);
  cancelled.cancel();
  cancelled.cancel();
  await sleep(60);
  t.deepEqual(fired, ['kept']);
  t.notThrows(() => kept.cancel());
});
