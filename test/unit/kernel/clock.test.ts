import test from 'ava';
import { ManualClock } from '../../../src/kernel/clock.js';

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
