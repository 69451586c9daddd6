import test from 'ava';
import { MessageChannel } from 'node:worker_threads';
import { ManualClock, systemClock, type Clock, type TimerHandle } from '../../../src/kernel/clock.js';
import { DeadlineList, type DeadlineEntry } from '../../../src/kernel/deadline-list.js';

class Entry implements DeadlineEntry {
  prevDue: DeadlineEntry | undefined;
  nextDue: DeadlineEntry | undefined;
  listed = false;
  constructor(
    readonly name: string,
    public dueAt: number,
  ) {}
}

function setup(clock = new ManualClock()): { clock: ManualClock; list: DeadlineList<Entry>; fired: [string, number][] } {
  const fired: [string, number][] = [];
  const list = new DeadlineList<Entry>(clock, (e) => fired.push([e.name, clock.now()]));
  return { clock, list, fired };
}

test('entries fire at their due times, in due order, whatever order they were added in', (t) => {
  const { clock, list, fired } = setup();
  for (const [name, at] of [['c', 30], ['a', 10], ['b1', 20], ['b2', 20], ['d', 25]] as const) list.add(new Entry(name, at));
  t.is(list.size, 5);
  clock.advance(9.9);
  t.deepEqual(fired, []);
  clock.advance(100);
  t.deepEqual(fired, [['a', 10], ['b1', 20], ['b2', 20], ['d', 25], ['c', 30]]);
  t.is(list.size, 0);
  t.is(clock.pendingTimers, 0, 'no timer left once the list is empty');
});

test('one timer for many entries, and none once every entry is removed', (t) => {
  const { clock, list, fired } = setup();
  const entries = Array.from({ length: 100 }, (_, i) => new Entry(`q${i}`, 20 + i * 0.01));
  for (const e of entries) list.add(e);
  t.is(clock.pendingTimers, 1);
  for (const e of entries.slice(0, 50)) list.remove(e);
  t.is(clock.pendingTimers, 1, 'removing the earliest does not re-arm: the timer armed for it fires and re-arms');
  list.remove(entries[50] as Entry);
  list.remove(entries[50] as Entry); // twice: nothing
  t.is(list.size, 49);
  for (const e of entries.slice(52)) list.remove(e);
  clock.advance(20.2);
  t.deepEqual(fired, [], 'the timer armed for q0 found nothing due and re-armed for q51');
  t.is(clock.pendingTimers, 1);
  clock.advance(100);
  t.deepEqual(fired, [['q51', 20 + 51 * 0.01]], 'removed entries never fire');
  t.is(list.size, 0);
  t.is(clock.pendingTimers, 0);
});

test('an entry earlier than the armed timer re-arms it', (t) => {
  const { clock, list, fired } = setup();
  list.add(new Entry('late', 50));
  list.add(new Entry('early', 5));
  t.is(clock.pendingTimers, 1);
  clock.advance(5);
  t.deepEqual(fired, [['early', 5]]);
  clock.advance(45);
  t.deepEqual(fired, [['early', 5], ['late', 50]]);
});

test('adding a listed entry again moves it; clear drops every entry unfired', (t) => {
  const { clock, list, fired } = setup();
  const a = new Entry('a', 10);
  list.add(a);
  list.add(new Entry('b', 20));
  a.dueAt = 30;
  list.add(a);
  t.is(list.size, 2);
  clock.advance(25);
  t.deepEqual(fired, [['b', 20]]);
  list.clear();
  t.is(list.size, 0);
  t.is(clock.pendingTimers, 0);
  clock.advance(100);
  t.deepEqual(fired, [['b', 20]]);
});

test('a timer that fires before the clock reads its due time still fires the entries it was armed for', (t) => {
  // Node timers count whole milliseconds of the loop's time: one can run while performance.now() is still a
  // fraction of a millisecond short of the due time. The entry must fire then, not wait for another timer.
  let pending: { at: number; callback: () => void } | undefined;
  let now = 0;
  const early: Clock = {
    now: () => now,
    setTimeout(callback, ms): TimerHandle {
      pending = { at: now + ms, callback };
      return { cancel: () => (pending = undefined) };
    },
  };
  const fired: string[] = [];
  const list = new DeadlineList<Entry>(early, (e) => fired.push(e.name));
  list.add(new Entry('a', 10));
  list.add(new Entry('b', 10.5));
  t.is(pending?.at, 10);
  now = 9.4;
  pending?.callback();
  t.deepEqual(fired, ['a'], 'a fires; b, due later than the timer was armed for, waits');
  t.is(pending?.at, 10.5);
});

test('callbacks may add and remove entries: the list stays consistent and re-armed', (t) => {
  const clock = new ManualClock();
  const fired: string[] = [];
  const b = new Entry('b', 10);
  const list: DeadlineList<Entry> = new DeadlineList<Entry>(clock, (e) => {
    fired.push(e.name);
    if (e.name === 'a') {
      list.remove(b); // already taken off as due: nothing
      list.add(new Entry('c', 15));
    }
  });
  list.add(new Entry('a', 10));
  list.add(b);
  list.add(new Entry('d', 40));
  clock.advance(10);
  t.deepEqual(fired, ['a', 'b'], 'both due entries fire');
  clock.advance(5);
  t.deepEqual(fired, ['a', 'b', 'c']);
  clock.advance(25);
  t.deepEqual(fired, ['a', 'b', 'c', 'd']);
  t.is(clock.pendingTimers, 0);
});

/**
 * After a stall of the main thread, Node runs due timers before the messages that arrived meanwhile. The list
 * hands over its due entries only after that waiting I/O (`Clock.afterIo`): an answer that came back in time
 * but sat in a port during the stall is taken before its deadline is declared missed.
 */
async function answerOrDeadlineAfterStall(clock: Clock): Promise<string[]> {
  const events: string[] = [];
  const { port1, port2 } = new MessageChannel();
  await new Promise<void>((resolve) => {
    // From a check-phase callback, so that the next loop turn runs timers first, then the port's message.
    setImmediate(() => {
      const list = new DeadlineList<Entry>(clock, (e) => {
        events.push(`deadline ${e.name}`);
        setTimeout(resolve, 20);
      });
      const query = new Entry('q', clock.now() + 5);
      list.add(query);
      port2.on('message', () => {
        events.push('answer');
        list.remove(query);
        setTimeout(resolve, 20);
      });
      port1.postMessage('done');
      const until = performance.now() + 30;
      while (performance.now() < until); // the stall: the answer arrives, the deadline passes
    });
  });
  port1.close();
  return events;
}

test('after a stall, an answer that arrived in time is handled before the deadline fires (real clock)', async (t) => {
  t.deepEqual(await answerOrDeadlineAfterStall(systemClock), ['answer'], 'the answer wins; the deadline finds nothing due');
  const { afterIo: _, ...timersOnly } = systemClock;
  t.deepEqual(await answerOrDeadlineAfterStall(timersOnly), ['deadline q', 'answer'], 'without afterIo, the timer runs first');
});

test('an entry without a due time (NaN) is refused: at the head it would hold back every entry behind it', (t) => {
  const clock = new ManualClock();
  const list = new DeadlineList<{ dueAt: number; prevDue: undefined; nextDue: undefined; listed: boolean }>(clock, () => {});
  t.throws(() => list.add({ dueAt: Number.NaN, prevDue: undefined, nextDue: undefined, listed: false }), { instanceOf: RangeError, message: /NaN/ });
  t.is(list.size, 0);
});
