import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';

/** How one query went, as the open-loop driver saw it. */
export interface SendOutcome<R> {
  index: number;
  /** When the query was due to be sent (ms, performance.now()). */
  scheduledAt: number;
  /** Latency from the scheduled send time: the time a user waited, even if the generator sent late. */
  latencyMs: number;
  result?: R;
  error?: unknown;
}

export interface OpenLoopOptions<R> {
  /** Queries per second. */
  rate: number;
  /** How many queries to send. */
  count: number;
  /** `poisson` spaces sends by exponential gaps; `fixed` evenly. Default fixed. */
  arrivals?: 'fixed' | 'poisson';
  /** Seed for Poisson gaps. */
  seed?: number;
  /** A send later than this after its scheduled time counts as late (the generator fell behind). Default 5 ms. */
  lateThresholdMs?: number;
  send(index: number): Promise<R>;
  onOutcome(outcome: SendOutcome<R>): void;
}

export interface OpenLoopReport {
  sent: number;
  late: number;
  durationMs: number;
  offeredRate: number;
  achievedRate: number;
}

/**
 * Sends on a schedule whatever the answers (open loop, as wrk2 does), so a stalled server cannot slow the
 * generator and hide its own tail ("coordinated omission"). Each query is timed from its scheduled send time.
 */
export async function runOpenLoop<R>(options: OpenLoopOptions<R>): Promise<OpenLoopReport> {
  const { rate, count, send, onOutcome } = options;
  const late = options.lateThresholdMs ?? 5;
  let state = (options.seed ?? 1) >>> 0;
  const uniform = (): number => {
    state = (state + 0x6d2b79f5) | 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const gapMs = (): number => (options.arrivals === 'poisson' ? (-Math.log(1 - uniform()) * 1000) / rate : 1000 / rate);
  const start = performance.now();
  let due = start;
  let lateSends = 0;
  // Count answers instead of holding every promise: thousands of live promises would slow the very
  // garbage collections whose pauses the run is measuring.
  let outstanding = 0;
  let allAnswered: (() => void) | undefined;
  const answered = (): void => {
    outstanding--;
    if (outstanding === 0) allAnswered?.();
  };
  for (let i = 0; i < count; i++) {
    const now = performance.now();
    if (due > now) {
      await sleep(due - now);
    }
    const sentAt = performance.now();
    if (sentAt - due > late) lateSends++;
    const scheduledAt = due;
    outstanding++;
    send(i).then(
      (result) => {
        onOutcome({ index: i, scheduledAt, latencyMs: performance.now() - scheduledAt, result });
        answered();
      },
      (error: unknown) => {
        onOutcome({ index: i, scheduledAt, latencyMs: performance.now() - scheduledAt, error });
        answered();
      },
    );
    due += gapMs();
  }
  if (outstanding > 0) await new Promise<void>((resolve) => (allAnswered = resolve));
  const durationMs = performance.now() - start;
  return { sent: count, late: lateSends, durationMs, offeredRate: rate, achievedRate: (count / durationMs) * 1000 };
}
