import { performance } from 'node:perf_hooks';
import { setImmediate as yieldToIo, setTimeout as sleep } from 'node:timers/promises';
import { arrivalGaps, type ArrivalProcess } from './arrivals.js';

/** How one query went, as the open-loop driver saw it. */
export interface SendOutcome<R> {
  index: number;
  /** When the query was due to be sent (ms, on the driver's clock). */
  scheduledAt: number;
  /** Latency from the scheduled send time: the time a user waited, even if the generator sent late. */
  latencyMs: number;
  result?: R;
  error?: unknown;
}

/**
 * The driver's time source: real time by default, a fake one in tests. Not the kernel's `Clock` on purpose: the
 * driver awaits a sleep between sends, and a test's fake advances time when it sleeps, which a callback timer
 * cannot express; and the generator process must not load the server (the public API) to get a clock.
 */
export interface LoadClock {
  /** Milliseconds, monotonic. */
  now(): number;
  /** Resolves after `ms` milliseconds on this clock. */
  sleep(ms: number): Promise<void>;
}

/** `performance.now()` and Node's timers. */
export const realLoadClock: LoadClock = {
  now: () => performance.now(),
  sleep: (ms) => sleep(ms),
};

export interface OpenLoopOptions<R> {
  /** Queries per second. */
  rate: number;
  /** How many queries to send. */
  count: number;
  /** `poisson` spaces sends by exponential gaps; `fixed` evenly. Default fixed. */
  arrivals?: ArrivalProcess;
  /** Seed for Poisson gaps. */
  seed?: number;
  /** A send later than this after its scheduled time counts as late (the generator fell behind). Default 5 ms. */
  lateThresholdMs?: number;
  /** Default: real time. */
  clock?: LoadClock;
  /** Checked before each send; when it returns true, no more queries are sent (those in flight are awaited). */
  shouldStop?: () => boolean;
  /** Called right after each send starts, with when it was due and when it went. */
  onSend?: (index: number, scheduledAt: number, sentAt: number) => void;
  send(index: number): Promise<R>;
  onOutcome(outcome: SendOutcome<R>): void;
}

export interface OpenLoopReport {
  sent: number;
  late: number;
  /** The latest any send went after its scheduled time, ms. */
  maxLateMs: number;
  durationMs: number;
  offeredRate: number;
  achievedRate: number;
}

/**
 * Sends behind schedule in a row before the driver yields to I/O anyway: a generator that has fallen behind
 * must still read answers, or they pile up unread and the latencies it reports are its own, not the server's.
 */
const MAX_SENDS_WITHOUT_YIELD = 256;

/**
 * Sends on a schedule whatever the answers (open loop, as wrk2 does), so a stalled server cannot slow the
 * generator and hide its own tail ("coordinated omission"). Each query is timed from its scheduled send time.
 *
 * @example
 * const report = await runOpenLoop({ rate: 1000, count: 5000, send: (i) => fetch(url), onOutcome: (o) => recorder.record(o.latencyMs) });
 */
export async function runOpenLoop<R>(options: OpenLoopOptions<R>): Promise<OpenLoopReport> {
  const { rate, count, send, onOutcome } = options;
  const clock = options.clock ?? realLoadClock;
  const late = options.lateThresholdMs ?? 5;
  const gapMs = arrivalGaps(options.arrivals ?? 'fixed', rate, options.seed ?? 1);
  const start = clock.now();
  let due = start;
  let lateSends = 0;
  let maxLateMs = 0;
  let sent = 0;
  // Count answers instead of holding every promise: thousands of live promises would slow the very
  // garbage collections whose pauses the run is measuring.
  let outstanding = 0;
  let allAnswered: (() => void) | undefined;
  const answered = (): void => {
    outstanding--;
    if (outstanding === 0) allAnswered?.();
  };
  let withoutYield = 0;
  for (let i = 0; i < count; i++) {
    if (options.shouldStop?.() === true) break;
    const now = clock.now();
    if (due > now) {
      await clock.sleep(due - now);
      withoutYield = 0;
    } else if (++withoutYield >= MAX_SENDS_WITHOUT_YIELD) {
      await yieldToIo();
      withoutYield = 0;
    }
    const sentAt = clock.now();
    const behind = sentAt - due;
    if (behind > late) lateSends++;
    if (behind > maxLateMs) maxLateMs = behind;
    const scheduledAt = due;
    outstanding++;
    sent++;
    send(i).then(
      (result) => {
        onOutcome({ index: i, scheduledAt, latencyMs: clock.now() - scheduledAt, result });
        answered();
      },
      (error: unknown) => {
        onOutcome({ index: i, scheduledAt, latencyMs: clock.now() - scheduledAt, error });
        answered();
      },
    );
    options.onSend?.(i, scheduledAt, sentAt);
    due += gapMs();
  }
  if (outstanding > 0) await new Promise<void>((resolve) => (allAnswered = resolve));
  const durationMs = clock.now() - start;
  return { sent, late: lateSends, maxLateMs, durationMs, offeredRate: rate, achievedRate: durationMs > 0 ? (sent / durationMs) * 1000 : 0 };
}
