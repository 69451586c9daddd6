import test from 'ava';
import { runOpenLoop, type LoadClock, type SendOutcome } from '../../../src/load/open-loop.js';

/** A clock that moves only when the driver sleeps (or a test stalls it). */
class FakeClock implements LoadClock {
  t = 1000;
  sleeps = 0;
  now(): number {
    return this.t;
  }
  async sleep(ms: number): Promise<void> {
    this.sleeps++;
    this.t += ms;
  }
}

/** A sender whose answers come only when the test releases them: the slowest server possible. */
function heldSender(clock: FakeClock) {
  const sentAt: number[] = [];
  const release: (() => void)[] = [];
  return {
    sentAt,
    release: (answerAfterMs: number) => {
      clock.t += answerAfterMs;
      for (const r of release.splice(0)) r();
    },
    send: (i: number) =>
      new Promise<number>((resolve) => {
        sentAt.push(clock.now());
        release.push(() => resolve(i));
      }),
  };
}

test('sends stay on schedule while no answer has come back: sends never wait for answers', async (t) => {
  const clock = new FakeClock();
  const sender = heldSender(clock);
  const outcomes: SendOutcome<number>[] = [];
  const done = runOpenLoop({ rate: 100, count: 50, clock, send: sender.send, onOutcome: (o) => outcomes.push(o) });
  // Let the driver run: it only awaits the fake sleeps, so every send happens before any answer exists.
  while (sender.sentAt.length < 50) await new Promise((resolve) => setImmediate(resolve));
  t.is(outcomes.length, 0, 'no answer yet');
  t.deepEqual(
    sender.sentAt,
    Array.from({ length: 50 }, (_, i) => 1000 + i * 10),
    'one send every 10 ms from the start, exactly on schedule',
  );
  sender.release(250);
  const report = await done;
  t.is(report.sent, 50);
  t.is(report.late, 0);
  t.is(outcomes.length, 50);
  // Each query is timed from its scheduled send: the first waited longest.
  const byIndex = outcomes.sort((a, b) => a.index - b.index);
  t.is(byIndex[0]?.latencyMs, 490 + 250);
  t.is(byIndex[49]?.latencyMs, 250);
});

test('a stalled generator counts late sends and still times queries from their scheduled send', async (t) => {
  const clock = new FakeClock();
  const outcomes: SendOutcome<number>[] = [];
  let calls = 0;
  const report = await runOpenLoop({
    rate: 1000,
    count: 20,
    clock,
    lateThresholdMs: 5,
    send: async (i) => {
      calls++;
      // The 5th send stalls the generator's thread for 30 ms (a GC pause, a busy core).
      if (calls === 5) clock.t += 30;
      return i;
    },
    onOutcome: (o) => outcomes.push(o),
  });
  t.is(report.sent, 20);
  // Sends due at 5..34 ms went out at 34 ms: those more than 5 ms behind are late.
  t.true(report.late >= 20 - 5 - 6 && report.late <= 20 - 5, `late ${report.late}`);
  t.true(report.maxLateMs >= 29 && report.maxLateMs <= 30, `max late ${report.maxLateMs}`);
  const sixth = outcomes.find((o) => o.index === 5);
  t.is(sixth?.scheduledAt, 1005);
  t.true((sixth?.latencyMs ?? 0) >= 29, 'the stall shows in the latency of queries due during it');
});

test('poisson arrivals keep the offered rate on average and are reproducible with a seed', async (t) => {
  const schedule = async (seed: number): Promise<number[]> => {
    const clock = new FakeClock();
    const at: number[] = [];
    await runOpenLoop({ rate: 500, count: 4000, arrivals: 'poisson', seed, clock, send: async () => at.push(clock.now()), onOutcome: () => {} });
    return at;
  };
  const a = await schedule(7);
  const b = await schedule(7);
  const c = await schedule(8);
  t.deepEqual(a, b);
  t.notDeepEqual(a, c);
  const span = (a[a.length - 1] as number) - (a[0] as number);
  const meanGap = span / (a.length - 1);
  t.true(Math.abs(meanGap - 2) < 0.1, `mean gap ${meanGap} ms, expected 2 ms`);
});

test('shouldStop ends sending; queries in flight are still awaited', async (t) => {
  const clock = new FakeClock();
  let sent = 0;
  const outcomes: SendOutcome<number>[] = [];
  const report = await runOpenLoop({
    rate: 100,
    count: 100,
    clock,
    shouldStop: () => sent >= 10,
    send: async (i) => {
      sent++;
      return i;
    },
    onOutcome: (o) => outcomes.push(o),
  });
  t.is(report.sent, 10);
  t.is(outcomes.length, 10);
});

test('a generator far behind schedule still yields to I/O, so answers are read as they come', async (t) => {
  const clock = new FakeClock();
  // Every reading of the clock is 1 ms later: every send is behind schedule, so the driver never sleeps.
  clock.now = () => (clock.t += 1);
  let ticks = 0;
  let ticking = true;
  const tick = (): void => {
    ticks++;
    if (ticking) setImmediate(tick);
  };
  setImmediate(tick);
  const report = await runOpenLoop({ rate: 1000, count: 5000, clock, send: async (i) => i, onOutcome: () => {} });
  ticking = false;
  t.is(report.sent, 5000);
  t.true(report.late > 4900);
  t.true(ticks >= Math.floor(5000 / 256) - 1, `the event loop turned ${ticks} times during 5,000 late sends`);
});
