import { readFileSync } from 'node:fs';
import os from 'node:os';

/** Latency percentiles of one rate, ms; null where the percentile fell among misses (or there was no answer). */
export interface RateLatency {
  p50: number | null;
  p90: number | null;
  p99: number | null;
  p999: number | null;
  max: number | null;
  mean: number | null;
}

/** One rate of a load test, as stored and printed. */
export interface RateResult {
  /** Queries per second the generator offered. */
  offered: number;
  /** Answers per second that came back, whatever they were. */
  achieved: number;
  /** Model answers within the SLO per second. */
  goodput: number;
  sent: number;
  /** Model answers. */
  ok: number;
  /** The application's default output (an SLO miss the server reported). */
  defaults: number;
  /** Refused for overload (503). */
  refused: number;
  errors: number;
  /** Sends that went out more than the late threshold after their scheduled time. */
  late: number;
  maxLateMs: number;
  /** Defaults, refusals and errors count as slower than any answer. */
  latency: RateLatency;
  /**
   * The queries the server admitted (a model's answer or the default output, not refused nor failed), from their
   * scheduled send: under overload, what the queries let in saw. Absent in runs recorded before it existed.
   */
  admittedLatency?: RateLatency;
  /** Model answers within the SLO, over all sent. */
  sloAttainment: number;
  /** Rows per batch on the server over this rate, when it says (clipper-ts /metrics or the API). */
  meanBatch: number | null;
  /** Share of cache lookups answered without running a model, when the server says. */
  cacheHitRatio: number | null;
  /** p99 within the SLO. */
  meetsSlo: boolean;
  /** The generator kept to its schedule (late sends within the allowed share); an invalid rate is no result. */
  valid: boolean;
  /** 1, or more when a missed rate was measured again. */
  attempts: number;
  durationS: number;
  /**
   * CPU the generator's process used over this rate, in cores (1 = one core busy). On a small machine a busy
   * generator takes CPU from the server: read it beside the results.
   */
  generatorCpu?: number;
  /** Error kinds and how many of each. */
  errorKinds?: Record<string, number>;
}

/** One sample of the run over time. */
export interface TimelinePoint {
  /** Seconds since the measured part of the run began. */
  t: number;
  offered: number;
  /** Answers per second in this interval. */
  throughput: number;
  /** p99 of the answers in this interval, ms (null: among misses, or none). */
  p99: number | null;
  /** Defaults, refusals and errors in this interval. */
  errors: number;
  meanBatch: number | null;
}

/** A whole load test, as `--json` prints it and `--compare` and reports read it. */
export interface LoadRun {
  format: typeof LOAD_RUN_FORMAT;
  label: string;
  startedAt: string;
  target: string;
  settings: Record<string, unknown>;
  machine: MachineInfo;
  rates: RateResult[];
  timeline: TimelinePoint[];
  /** The highest achieved rate that met the SLO with a valid generator. */
  best: { offered: number; achieved: number; p99: number | null } | null;
}

export interface MachineInfo {
  cpus: number;
  cpuModel: string;
  node: string;
  platform: string;
}

export const LOAD_RUN_FORMAT = 'clipper-ts-loadtest/1';

export function machineInfo(): MachineInfo {
  const cpus = os.cpus();
  return { cpus: cpus.length, cpuModel: cpus[0]?.model ?? 'unknown', node: process.version, platform: `${os.type()} ${os.release()} ${os.arch()}` };
}

/** A percentile for JSON: Infinity (among the misses) and NaN (no answers) become null. */
export function finiteOrNull(ms: number): number | null {
  return Number.isFinite(ms) ? ms : null;
}

/** A latency recorder's summary as stored: each percentile in ms, or null where nothing was recorded. */
export function rateLatency(summary: Record<keyof RateLatency, number>): RateLatency {
  return {
    p50: finiteOrNull(summary.p50),
    p90: finiteOrNull(summary.p90),
    p99: finiteOrNull(summary.p99),
    p999: finiteOrNull(summary.p999),
    max: finiteOrNull(summary.max),
    mean: finiteOrNull(summary.mean),
  };
}

/** The best rate: highest achieved among those that met the SLO with a valid generator. */
export function bestRate(rates: readonly RateResult[]): LoadRun['best'] {
  let best: RateResult | undefined;
  for (const r of rates) if (r.meetsSlo && r.valid && (best === undefined || r.achieved > best.achieved)) best = r;
  return best === undefined ? null : { offered: best.offered, achieved: best.achieved, p99: best.latency.p99 };
}

/** Reads a run saved with `--json` or `--out`; throws naming the file when it is not one. */
export function readLoadRun(file: string): LoadRun {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new RangeError(`${file} could not be read as JSON: ${(error as Error).message}`);
  }
  const run = parsed as Partial<LoadRun> | null;
  if (run === null || typeof run !== 'object' || run.format !== LOAD_RUN_FORMAT || !Array.isArray(run.rates)) {
    throw new RangeError(`${file} is not a load-test run (expected "format": "${LOAD_RUN_FORMAT}" and a "rates" array)`);
  }
  return { timeline: [], best: bestRate(run.rates), label: file, ...run } as LoadRun;
}
