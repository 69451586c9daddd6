import test from 'ava';
import { Actor } from '../../../src/kernel/actor.js';
import { ManualClock } from '../../../src/kernel/clock.js';
import type { RestartPolicyOptions } from '../../../src/kernel/restart-policy.js';
import { Supervisor, type Supervised, type SupervisionEvent } from '../../../src/kernel/supervisor.js';

type ChildMessage = { type: 'crash'; error: unknown } | { type: 'work'; label: string };

/** A fake child: an actor whose failures, restarts and retirement are recorded. */
class FakeChild extends Actor<ChildMessage> implements Supervised {
  restarts = 0;
  retired: unknown[] = [];
  handled: string[] = [];
  /** How many of the next starts should fail. */
  failingStarts = 0;
  /** How many of the next restarts should reject after a successful start (a check after loading failed). */
  failingChecks = 0;

  protected receive(message: ChildMessage): void {
    if (message.type === 'crash') throw message.error;
    this.handled.push(message.label);
  }

  protected override onStart(): void {
    if (this.failingStarts > 0) {
      this.failingStarts--;
      throw new Error(`${this.name} failed to start`);
    }
  }

  /** A failure detected outside `receive` (a worker that died). */
  crash(error: unknown): void {
    this.fail(error);
  }

  async restart(): Promise<void> {
    this.restarts++;
    await this.start();
    if (this.failingChecks > 0) {
      this.failingChecks--;
      throw new Error(`${this.name} failed its check after restart`);
    }
  }

  retire(error: unknown): void {
    this.retired.push(error);
  }
}

/** Lets promise callbacks run (restart() is async); no time passes. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

const basePolicy: RestartPolicyOptions = { maxRestarts: 5, windowMs: 60_000, backoffBaseMs: 100, backoffMaxMs: 5_000 };

async function setup(policy: Partial<RestartPolicyOptions> = {}, childNames = ['child'], startTime = 0) {
  const clock = new ManualClock(startTime);
  const events: SupervisionEvent[] = [];
  const supervisor = new Supervisor('supervisor', { ...basePolicy, ...policy }, { clock, onEvent: (e) => events.push(e) });
  await supervisor.start();
  const children = childNames.map((name) => new FakeChild(name, supervisor));
  for (const child of children) await child.start();
  return { clock, events, supervisor, children, child: children[0] as FakeChild };
}

const scheduled = (events: SupervisionEvent[]) =>
  events.filter((e): e is Extract<SupervisionEvent, { type: 'restartScheduled' }> => e.type === 'restartScheduled');

test('a failed child is restarted after backoffBaseMs, not before', async (t) => {
  const { clock, events, child } = await setup();
  const error = new Error('worker died');
  child.crash(error);
  t.is(child.status, 'failed');
  t.deepEqual(events, [{ type: 'restartScheduled', child: 'child', delayMs: 100, attempt: 1, error }]);
  clock.advance(99);
  await settle();
  t.is(child.restarts, 0, 'not restarted before the delay');
  clock.advance(1);
  t.is(child.restarts, 1, 'restarted as the delay elapses');
  await settle();
  t.is(child.status, 'running');
  t.deepEqual(events.at(-1), { type: 'restarted', child: 'child' });
});

test('a throwing receive reaches the supervisor the same way', async (t) => {
  const { clock, events, child } = await setup();
  const error = new Error('bad message');
  child.tell({ type: 'crash', error });
  t.is(child.status, 'failed');
  t.is(scheduled(events).length, 1);
  t.is(scheduled(events)[0]?.error, error);
  clock.advance(100);
  await settle();
  t.is(child.status, 'running');
  child.tell({ type: 'work', label: 'after restart' });
  t.deepEqual(child.handled, ['after restart']);
});

test('repeated failures back off exponentially, capped at backoffMaxMs', async (t) => {
  const { clock, events, child } = await setup({ maxRestarts: 10, backoffMaxMs: 1_000 });
  const expected = [100, 200, 400, 800, 1_000, 1_000];
  for (const [i, delay] of expected.entries()) {
    child.crash(new Error(`failure ${i + 1}`));
    t.deepEqual(scheduled(events).map((e) => e.delayMs), expected.slice(0, i + 1));
    t.is(scheduled(events)[i]?.attempt, i + 1);
    clock.advance(delay - 1);
    await settle();
    t.is(child.restarts, i, `restart ${i + 1} not before ${delay} ms`);
    clock.advance(1);
    await settle();
    t.is(child.restarts, i + 1, `restart ${i + 1} after ${delay} ms`);
    t.is(child.status, 'running');
  }
  t.is(events.filter((e) => e.type === 'restarted').length, expected.length);
  t.is(child.retired.length, 0);
});

test('the supervisor gives up after maxRestarts failures within the window: retire once, one gaveUp event', async (t) => {
  const { clock, events, child } = await setup({ maxRestarts: 3 });
  for (const delay of [100, 200, 400]) {
    child.crash(new Error('again'));
    clock.advance(delay);
    await settle();
    t.is(child.status, 'running');
  }
  const last = new Error('last straw');
  child.crash(last);
  t.deepEqual(child.retired, [last]);
  t.deepEqual(events.at(-1), { type: 'gaveUp', child: 'child', failuresInWindow: 4, error: last });
  t.is(clock.pendingTimers, 0, 'no restart scheduled after giving up');
  clock.advance(60_000);
  await settle();
  t.is(child.restarts, 3);
  t.is(child.status, 'failed');
  t.is(events.filter((e) => e.type === 'gaveUp').length, 1);
});

test('failures older than the window do not count towards giving up', async (t) => {
  const { clock, events, child } = await setup({ maxRestarts: 2, windowMs: 1_000 });
  child.crash(new Error('1'));
  clock.advance(100);
  await settle();
  child.crash(new Error('2'));
  clock.advance(200);
  await settle();
  // Both failures (at 0 and 100 ms) are now more than a window old.
  clock.advance(2_000);
  child.crash(new Error('3'));
  t.deepEqual(scheduled(events).map((e) => [e.attempt, e.delayMs]), [[1, 100], [2, 200], [1, 100]]);
  t.deepEqual(child.retired, []);
  clock.advance(100);
  await settle();
  t.is(child.restarts, 3);
  t.is(child.status, 'running');
});

test('a restart whose start fails counts as the next failure', async (t) => {
  const { clock, events, child } = await setup({ maxRestarts: 5 });
  child.failingStarts = 2;
  child.crash(new Error('first'));
  clock.advance(100);
  await settle();
  t.is(child.restarts, 1);
  t.is(child.status, 'failed');
  t.deepEqual(scheduled(events).map((e) => e.delayMs), [100, 200]);
  clock.advance(200);
  await settle();
  t.deepEqual(scheduled(events).map((e) => e.delayMs), [100, 200, 400]);
  clock.advance(400);
  await settle();
  t.is(child.restarts, 3);
  t.is(child.status, 'running');
  t.is(events.filter((e) => e.type === 'restarted').length, 1, 'only the successful restart is reported');
});

test('each child has its own failure history', async (t) => {
  const { clock, events, children } = await setup({ maxRestarts: 1 }, ['a', 'b']);
  const [a, b] = children as [FakeChild, FakeChild];
  a.crash(new Error('a1'));
  b.crash(new Error('b1'));
  t.deepEqual(scheduled(events).map((e) => [e.child, e.attempt]), [['a', 1], ['b', 1]]);
  clock.advance(100);
  await settle();
  t.deepEqual([a.restarts, b.restarts], [1, 1]);
  a.crash(new Error('a2'));
  t.is(a.retired.length, 1);
  t.is(b.retired.length, 0);
  t.is(b.status, 'running');
});

test('forget clears a child\'s history', async (t) => {
  const { clock, events, supervisor, child } = await setup({ maxRestarts: 2 });
  child.crash(new Error('1'));
  clock.advance(100);
  await settle();
  child.crash(new Error('2'));
  clock.advance(200);
  await settle();
  supervisor.forget('child');
  child.crash(new Error('3'));
  t.deepEqual(scheduled(events).map((e) => e.attempt), [1, 2, 1]);
  t.deepEqual(child.retired, []);
});

test('a failure told before the supervisor starts is handled once it starts', async (t) => {
  const clock = new ManualClock();
  const events: SupervisionEvent[] = [];
  const supervisor = new Supervisor('supervisor', basePolicy, { clock, onEvent: (e) => events.push(e) });
  const child = new FakeChild('child', supervisor);
  await child.start();
  child.crash(new Error('early'));
  t.deepEqual(events, []);
  await supervisor.start();
  t.is(scheduled(events).length, 1);
  clock.advance(100);
  await settle();
  t.is(child.restarts, 1);
});

test('a restart that falls due after the supervisor stopped is not run', async (t) => {
  const { clock, supervisor, child } = await setup();
  child.crash(new Error('x'));
  await supervisor.stop();
  t.is(supervisor.status, 'stopped');
  clock.advance(1_000);
  await settle();
  t.is(child.restarts, 0);
});

test('a restart that rejects while the child is not failed (a check after its start) counts as the next failure', async (t) => {
  const { clock, events, child } = await setup();
  child.failingChecks = 1;
  child.crash(new Error('first'));
  clock.advance(100);
  await settle();
  t.is(child.restarts, 1);
  t.is(child.status, 'running', 'the start itself succeeded');
  const retries = scheduled(events);
  t.deepEqual(retries.map((e) => [e.attempt, e.delayMs]), [[1, 100], [2, 200]]);
  t.regex(String(retries[1]?.error), /child failed its check after restart/);
  t.is(events.filter((e) => e.type === 'restarted').length, 0);
  clock.advance(200);
  await settle();
  t.is(child.restarts, 2);
  t.deepEqual(events.filter((e) => e.type === 'restarted'), [{ type: 'restarted', child: 'child' }]);
});

test('backoff and giving up work the same on a clock far from zero (performance.now() after hours of uptime)', async (t) => {
  const { clock, events, child } = await setup({ maxRestarts: 3 }, ['child'], 36_000_000);
  for (const delay of [100, 200, 400]) {
    child.crash(new Error(`after ${delay}`));
    clock.advance(delay);
    await settle();
  }
  t.deepEqual(scheduled(events).map((e) => e.delayMs), [100, 200, 400]);
  child.crash(new Error('fourth'));
  t.is(child.retired.length, 1);
  t.deepEqual(events.filter((e) => e.type === 'gaveUp').map((e) => e.type === 'gaveUp' && e.failuresInWindow), [4]);
});
