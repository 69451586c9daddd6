import test from 'ava';
import { Actor, type ActorStatus, type ChildFailed, type FailureSink, type Reply } from '../../../src/kernel/actor.js';
import { ShuttingDownError } from '../../../src/errors.js';

type Message =
  | { type: 'note'; label: string }
  | { type: 'slow'; label: string; until: Promise<void> }
  | { type: 'slowFail'; until: Promise<void>; error: unknown }
  | { type: 'throw'; error: unknown }
  | { type: 'get'; reply: Reply<string[]> }
  | { type: 'refuse'; reply: Reply<never>; error: unknown };

/** An actor that logs what it handles, and records what it could not deliver. */
class Recorder extends Actor<Message> {
  log: string[] = [];
  undelivered: { message: Message; error: unknown }[] = [];
  failOnStart: unknown = undefined;
  startHook: () => void | Promise<void> = () => {};
  stopHook: () => void | Promise<void> = () => {};

  protected receive(message: Message): void | Promise<void> {
    switch (message.type) {
      case 'note':
        this.log.push(message.label);
        return;
      case 'slow':
        this.log.push(`${message.label}:start`);
        return message.until.then(() => {
          this.log.push(`${message.label}:end`);
        });
      case 'slowFail':
        return message.until.then(() => {
          throw message.error;
        });
      case 'throw':
        throw message.error;
      case 'get':
        message.reply.resolve([...this.log]);
        return;
      case 'refuse':
        message.reply.reject(message.error);
        return;
    }
  }

  protected override onStart(): void | Promise<void> {
    this.log.push('onStart');
    if (this.failOnStart !== undefined) {
      const error = this.failOnStart;
      this.failOnStart = undefined;
      throw error;
    }
    return this.startHook();
  }

  protected override async onStop(): Promise<void> {
    this.log.push('onStop');
    await this.stopHook();
  }

  protected override undeliverable(message: Message, error: unknown): void {
    this.undelivered.push({ message, error });
    if (message.type === 'get' || message.type === 'refuse') message.reply.reject(error);
  }

  /** Reports from the actor's own asynchronous work. */
  report(label: string): void {
    this.post({ type: 'note', label });
  }

  crash(error: unknown): void {
    this.fail(error);
  }
}

class Sink implements FailureSink {
  received: ChildFailed[] = [];
  tell(message: ChildFailed): void {
    this.received.push(message);
  }
}

function gate(): { until: Promise<void>; open: () => void } {
  let open!: () => void;
  const until = new Promise<void>((resolve) => {
    open = resolve;
  });
  return { until, open };
}

const settle = () => new Promise<void>((resolve) => setImmediate(resolve));
const labels = (a: Recorder) => a.undelivered.map((u) => (u.message.type === 'note' ? u.message.label : u.message.type));

test('messages are handled one at a time, in the order they were told', async (t) => {
  const a = new Recorder('a');
  await a.start();
  const sent = Array.from({ length: 20 }, (_, i) => `m${i}`);
  for (const label of sent) a.tell({ type: 'note', label });
  t.deepEqual(a.log, ['onStart', ...sent]);
  t.is(a.mailboxSize, 0);
});

test('messages told before start wait in the mailbox and run after onStart', async (t) => {
  const a = new Recorder('a');
  t.is(a.status, 'starting');
  a.tell({ type: 'note', label: 'early1' });
  a.tell({ type: 'note', label: 'early2' });
  t.is(a.mailboxSize, 2);
  t.deepEqual(a.log, []);
  await a.start();
  t.is(a.status, 'running');
  t.deepEqual(a.log, ['onStart', 'early1', 'early2']);
});

test('ask resolves with the reply, and rejects when the actor rejects it', async (t) => {
  const a = new Recorder('a');
  await a.start();
  a.tell({ type: 'note', label: 'x' });
  t.deepEqual(await a.ask<string[]>((reply) => ({ type: 'get', reply })), ['onStart', 'x']);
  const error = new Error('no');
  t.is(await t.throwsAsync(a.ask<never>((reply) => ({ type: 'refuse', reply, error }))), error);
  t.is(a.status, 'running', 'a rejected reply does not fail the actor');
});

test('an asynchronous receive holds the mailbox until it settles', async (t) => {
  const a = new Recorder('a');
  await a.start();
  const g = gate();
  a.tell({ type: 'slow', label: 'slow', until: g.until });
  a.tell({ type: 'note', label: 'next' });
  a.tell({ type: 'note', label: 'after' });
  await settle();
  t.deepEqual(a.log, ['onStart', 'slow:start']);
  t.is(a.mailboxSize, 2);
  g.open();
  await settle();
  t.deepEqual(a.log, ['onStart', 'slow:start', 'slow:end', 'next', 'after']);
  t.is(a.mailboxSize, 0);
});

test('a throwing receive fails the actor and relays a typed childFailed to the supervisor', async (t) => {
  const sink = new Sink();
  const a = new Recorder('a', sink);
  await a.start();
  const g = gate();
  const error = new Error('boom');
  a.tell({ type: 'slow', label: 's', until: g.until });
  a.tell({ type: 'throw', error });
  a.tell({ type: 'note', label: 'queued behind the failure' });
  g.open();
  await settle();
  t.is(a.status, 'failed');
  t.is(sink.received.length, 1);
  t.is(sink.received[0]?.type, 'childFailed');
  t.is(sink.received[0]?.child, a as unknown as Actor<never>);
  t.is(sink.received[0]?.error, error);
  t.deepEqual(labels(a), ['queued behind the failure'], 'what was queued is undeliverable');
  t.is(a.undelivered[0]?.error, error, 'with the failure as the reason');
});

test('a rejecting asynchronous receive fails the actor the same way', async (t) => {
  const sink = new Sink();
  const a = new Recorder('a', sink);
  await a.start();
  const g = gate();
  const error = new Error('async boom');
  a.tell({ type: 'slowFail', until: g.until, error });
  a.tell({ type: 'note', label: 'waiting' });
  g.open();
  await settle();
  t.is(a.status, 'failed');
  t.deepEqual(sink.received.map((m) => m.error), [error]);
  t.deepEqual(labels(a), ['waiting']);
});

test('a failed actor refuses new messages with ShuttingDownError and reports only its first failure', async (t) => {
  const sink = new Sink();
  const a = new Recorder('a', sink);
  await a.start();
  a.tell({ type: 'throw', error: new Error('first') });
  a.crash(new Error('second'));
  a.tell({ type: 'note', label: 'late' });
  t.is(sink.received.length, 1);
  t.deepEqual(labels(a), ['late']);
  const refusal = a.undelivered[0]?.error;
  t.true(refusal instanceof ShuttingDownError);
  t.is((refusal as ShuttingDownError).code, 'SHUTTING_DOWN');
  t.regex((refusal as Error).message, /actor a has failed/);
  await t.throwsAsync(a.ask<string[]>((reply) => ({ type: 'get', reply })), { instanceOf: ShuttingDownError });
});

test('a failure without a supervisor still marks the actor failed', async (t) => {
  const a = new Recorder('a');
  await a.start();
  t.notThrows(() => a.tell({ type: 'throw', error: new Error('alone') }));
  t.is(a.status, 'failed');
});

test('a failed actor that starts again runs messages again', async (t) => {
  const sink = new Sink();
  const a = new Recorder('a', sink);
  await a.start();
  a.crash(new Error('died'));
  await a.start();
  t.is(a.status, 'running');
  a.tell({ type: 'note', label: 'back' });
  t.deepEqual(a.log, ['onStart', 'onStart', 'back']);
});

test('stop drains queued messages, then runs onStop; tells meanwhile are refused', async (t) => {
  const a = new Recorder('a');
  await a.start();
  const g = gate();
  a.tell({ type: 'slow', label: 'slow', until: g.until });
  a.tell({ type: 'note', label: 'queued1' });
  a.tell({ type: 'note', label: 'queued2' });
  const statuses: ActorStatus[] = [];
  const stopped = a.stop();
  statuses.push(a.status);
  a.tell({ type: 'note', label: 'too late' });
  t.deepEqual(labels(a), ['too late']);
  const refusal = a.undelivered[0]?.error;
  t.true(refusal instanceof ShuttingDownError);
  t.regex((refusal as Error).message, /stopping/);
  t.false(a.log.includes('onStop'), 'onStop waits for the mailbox');
  g.open();
  await stopped;
  statuses.push(a.status);
  t.deepEqual(statuses, ['stopping', 'stopped']);
  t.deepEqual(a.log, ['onStart', 'slow:start', 'slow:end', 'queued1', 'queued2', 'onStop']);
  a.tell({ type: 'note', label: 'after stop' });
  t.deepEqual(labels(a), ['too late', 'after stop']);
  t.regex((a.undelivered[1]?.error as Error).message, /stopped/);
  t.true(a.undelivered[1]?.error instanceof ShuttingDownError);
});

test('the actor\'s own work may still post while it stops, and is handled before onStop', async (t) => {
  const a = new Recorder('a');
  await a.start();
  const g = gate();
  a.tell({ type: 'slow', label: 'batch', until: g.until });
  const stopped = a.stop();
  a.report('batch done');
  g.open();
  await stopped;
  t.deepEqual(a.log, ['onStart', 'batch:start', 'batch:end', 'batch done', 'onStop']);
  a.report('after stop');
  t.deepEqual(labels(a), ['after stop'], 'post after stop is undeliverable');
});

test('a post during an asynchronous onStop is handled at once (in-flight work reporting back)', async (t) => {
  const a = new Recorder('a');
  await a.start();
  const g = gate();
  a.stopHook = () => g.until;
  const stopped = a.stop();
  await settle();
  t.is(a.status, 'stopping');
  a.report('batch done');
  t.deepEqual(a.log, ['onStart', 'onStop', 'batch done']);
  t.is(a.mailboxSize, 0);
  g.open();
  await stopped;
  t.is(a.status, 'stopped');
});

test('onStop may be asynchronous; the actor is stopped only after it finishes', async (t) => {
  const a = new Recorder('a');
  await a.start();
  const g = gate();
  a.stopHook = () => g.until;
  const stopped = a.stop();
  await settle();
  t.is(a.status, 'stopping');
  g.open();
  await stopped;
  t.is(a.status, 'stopped');
});

test('stopping twice is safe; onStop runs once', async (t) => {
  const a = new Recorder('a');
  await a.start();
  await Promise.all([a.stop(), a.stop()]);
  await a.stop();
  t.is(a.log.filter((l) => l === 'onStop').length, 1);
  t.is(a.status, 'stopped');
});

test('stopping an actor that never started refuses what was queued', async (t) => {
  const a = new Recorder('a');
  a.tell({ type: 'note', label: 'never run' });
  await a.stop();
  t.is(a.status, 'stopped');
  t.deepEqual(labels(a), ['never run']);
  t.true(a.undelivered[0]?.error instanceof ShuttingDownError);
  t.is((a.undelivered[0]?.error as Error).message, 'actor a stopped before it ran');
  t.is(a.mailboxSize, 0);
  t.deepEqual(a.log, ['onStop']);
});

test('a first start that fails rejects, marks the actor failed, refuses the queue and does not tell the supervisor', async (t) => {
  const sink = new Sink();
  const a = new Recorder('a', sink);
  const error = new Error('cannot load');
  a.failOnStart = error;
  a.tell({ type: 'note', label: 'queued' });
  t.is(await t.throwsAsync(a.start()), error);
  t.is(a.status, 'failed');
  t.is(a.mailboxSize, 0);
  t.deepEqual(labels(a), ['queued']);
  t.is(a.undelivered[0]?.error, error);
  t.is(sink.received.length, 0);
});

test('a restart whose onStart fails tells the supervisor', async (t) => {
  const sink = new Sink();
  const a = new Recorder('a', sink);
  await a.start();
  const first = new Error('first');
  a.crash(first);
  const error = new Error('reload failed');
  a.failOnStart = error;
  t.is(await t.throwsAsync(a.start()), error);
  t.is(a.status, 'failed');
  t.deepEqual(sink.received.map((m) => m.error), [first, error]);
});

// Regression: a second stop() (a shutdown racing an undeploy) waits for onStop to finish; it once resolved as
// soon as the mailbox was empty, while the worker was still being torn down.
test('a second stop() resolves only once the actor is stopped', async (t) => {
  const a = new Recorder('a');
  await a.start();
  const g = gate();
  a.stopHook = () => g.until;
  const first = a.stop();
  let secondDone = false;
  const second = a.stop().then(() => {
    secondDone = true;
  });
  await settle();
  t.false(secondDone, 'the second stop waits for onStop');
  g.open();
  await Promise.all([first, second]);
  t.is(a.status, 'stopped');
});

test('lifecycle: starting -> running -> stopping -> stopped', async (t) => {
  const a = new Recorder('a');
  const seen: ActorStatus[] = [a.status];
  const started = a.start();
  seen.push(a.status);
  await started;
  seen.push(a.status);
  const stopped = a.stop();
  seen.push(a.status);
  await stopped;
  seen.push(a.status);
  t.deepEqual(seen, ['starting', 'starting', 'running', 'stopping', 'stopped']);
});

test('the actor\'s own work posting while it runs is handled at once, in order with tells', async (t) => {
  const a = new Recorder('a');
  await a.start();
  a.tell({ type: 'note', label: 'told' });
  a.report('posted');
  t.deepEqual(a.log, ['onStart', 'told', 'posted']);
  t.is(a.mailboxSize, 0);
  t.deepEqual(a.undelivered, []);
});

test('a post to a failed actor is undeliverable with ShuttingDownError naming the actor and its status', async (t) => {
  const a = new Recorder('a');
  await a.start();
  a.crash(new Error('worker died'));
  a.report('late result');
  t.deepEqual(labels(a), ['late result']);
  t.true(a.undelivered[0]?.error instanceof ShuttingDownError);
  t.is((a.undelivered[0]?.error as Error).message, 'actor a is failed');
  t.is(a.mailboxSize, 0);
  await a.start();
  t.deepEqual(a.log, ['onStart', 'onStart'], 'the refused post is not handled after a restart either');
});

test('a post after stop is undeliverable with a message naming the actor and "stopped"', async (t) => {
  const a = new Recorder('a');
  await a.start();
  await a.stop();
  a.report('late');
  t.is((a.undelivered[0]?.error as Error).message, 'actor a is stopped');
});

test('a failure leaves the mailbox empty and the actor able to run again, whether receive threw or rejected', async (t) => {
  for (const how of ['throw', 'reject'] as const) {
    const sink = new Sink();
    const a = new Recorder('a', sink);
    await a.start();
    const error = new Error(how);
    const g = gate();
    if (how === 'throw') a.tell({ type: 'throw', error });
    else a.tell({ type: 'slowFail', until: g.until, error });
    a.tell({ type: 'note', label: 'queued' });
    g.open();
    await settle();
    t.is(a.status, 'failed', how);
    t.is(a.mailboxSize, 0, how);
    await a.start();
    a.tell({ type: 'note', label: 'back' });
    a.tell({ type: 'note', label: 'again' });
    t.deepEqual(a.log, ['onStart', 'onStart', 'back', 'again'], how);
    t.is(a.status, 'running', how);
  }
});

test('stop() during an asynchronous onStart leaves the actor stopped; it never starts running', async (t) => {
  const a = new Recorder('a');
  const g = gate();
  a.startHook = () => g.until;
  a.tell({ type: 'note', label: 'queued' });
  const started = a.start();
  await settle();
  t.is(a.status, 'starting');
  await a.stop();
  t.is(a.status, 'stopped');
  t.deepEqual(labels(a), ['queued']);
  g.open();
  await started;
  t.is(a.status, 'stopped');
  a.tell({ type: 'note', label: 'after' });
  t.deepEqual(a.log, ['onStart', 'onStop']);
  t.deepEqual(labels(a), ['queued', 'after']);
});

test('a stopped actor that fails later (its worker dies) stays stopped and tells no supervisor', async (t) => {
  const sink = new Sink();
  const a = new Recorder('a', sink);
  await a.start();
  await a.stop();
  a.crash(new Error('worker died after stop'));
  t.is(a.status, 'stopped');
  t.deepEqual(sink.received, []);
});

test('messages told during a restart wait for onStart, even if a receive from before the failure settles meanwhile', async (t) => {
  const a = new Recorder('a', new Sink());
  await a.start();
  const slow = gate();
  a.tell({ type: 'slow', label: 'slow', until: slow.until });
  a.crash(new Error('worker died'));
  const starting = gate();
  a.startHook = () => starting.until;
  const restarted = a.start();
  a.tell({ type: 'note', label: 'after restart' });
  slow.open();
  await settle();
  t.is(a.status, 'starting');
  t.deepEqual(a.log, ['onStart', 'slow:start', 'onStart', 'slow:end']);
  t.is(a.mailboxSize, 1);
  starting.open();
  await restarted;
  t.deepEqual(a.log, ['onStart', 'slow:start', 'onStart', 'slow:end', 'after restart']);
});
