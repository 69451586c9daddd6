import test from 'ava';
import { decideRestart, type RestartDecision, type RestartPolicyOptions } from '../../../src/kernel/restart-policy.js';

const policy: RestartPolicyOptions = { maxRestarts: 3, windowMs: 1_000, backoffBaseMs: 100, backoffMaxMs: 350 };

test('decideRestart: exponential backoff per failure in the window, capped, then give up', (t) => {
  const cases: { name: string; earlier: number[]; now: number; options?: Partial<RestartPolicyOptions>; decision: RestartDecision }[] = [
    { name: 'first failure', earlier: [], now: 0, decision: { action: 'restart', delayMs: 100, attempt: 1 } },
    { name: 'second failure doubles', earlier: [0], now: 10, decision: { action: 'restart', delayMs: 200, attempt: 2 } },
    { name: 'third failure is capped at backoffMaxMs', earlier: [0, 10], now: 20, decision: { action: 'restart', delayMs: 350, attempt: 3 } },
    { name: 'one more than maxRestarts gives up', earlier: [0, 10, 20], now: 30, decision: { action: 'giveUp', failuresInWindow: 4 } },
    { name: 'more still gives up', earlier: [0, 10, 20, 30, 40], now: 50, decision: { action: 'giveUp', failuresInWindow: 6 } },
    { name: 'failures exactly windowMs old no longer count', earlier: [0, 10, 20], now: 1_010, decision: { action: 'restart', delayMs: 200, attempt: 2 } },
    { name: 'failures just inside the window still count', earlier: [0, 10, 20], now: 999, decision: { action: 'giveUp', failuresInWindow: 4 } },
    { name: 'all old failures forgotten', earlier: [0, 10, 20], now: 50_000, decision: { action: 'restart', delayMs: 100, attempt: 1 } },
    { name: 'maxRestarts 0 gives up at once', earlier: [], now: 0, options: { maxRestarts: 0 }, decision: { action: 'giveUp', failuresInWindow: 1 } },
    {
      name: 'uncapped doubling',
      earlier: [1, 2, 3, 4],
      now: 5,
      options: { maxRestarts: 10, backoffMaxMs: 1e9 },
      decision: { action: 'restart', delayMs: 1_600, attempt: 5 },
    },
    {
      name: 'long runs stay at the cap',
      earlier: Array.from({ length: 60 }, (_, i) => i),
      now: 60,
      options: { maxRestarts: 100, backoffMaxMs: 5_000 },
      decision: { action: 'restart', delayMs: 5_000, attempt: 61 },
    },
    { name: 'base 0 restarts at once', earlier: [0], now: 1, options: { backoffBaseMs: 0 }, decision: { action: 'restart', delayMs: 0, attempt: 2 } },
  ];
  for (const c of cases) t.deepEqual(decideRestart(c.earlier, c.now, { ...policy, ...c.options }), c.decision, c.name);
});

test('decideRestart does not modify the history it is given', (t) => {
  const earlier = Object.freeze([0, 10]);
  decideRestart(earlier, 20, policy);
  t.deepEqual(earlier, [0, 10]);
});

test('the default-like policy gives 100, 200, 400, 800, 1600 ms, then gives up on the sixth failure', (t) => {
  const options: RestartPolicyOptions = { maxRestarts: 5, windowMs: 60_000, backoffBaseMs: 100, backoffMaxMs: 5_000 };
  const history: number[] = [];
  const delays: number[] = [];
  for (let now = 0; ; now += 1) {
    const d = decideRestart(history, now, options);
    if (d.action === 'giveUp') {
      t.is(d.failuresInWindow, 6);
      break;
    }
    delays.push(d.delayMs);
    history.push(now);
  }
  t.deepEqual(delays, [100, 200, 400, 800, 1_600]);
});
