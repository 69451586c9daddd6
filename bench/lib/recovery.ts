import type { TimelinePoint } from '../../src/load/load-run.js';

/**
 * When a server is back to normal after an overload, read from the load generator's timeline the way an operator
 * reads a dashboard: recovered at the start of the first run of `cleanIntervals` clean intervals in a row (each
 * with no default, refusal or error and its p99 within the SLO) after the overload ends. An isolated bad interval
 * later on (a machine stall seconds after) does not move the recovery; it is listed beside it, so nothing is
 * hidden. `allCleanAfterS` is the stricter older reading (every later interval clean), kept to compare runs.
 */
export interface Recovery {
  /** Seconds from the end of the overload to the start of the first clean run; null: no such run in the phase. */
  seconds: number | null;
  /** Seconds from the end of the overload until every later interval is clean; null: the last one is not. */
  allCleanAfterS: number | null;
  /** Bad intervals after the clean run began, with what went wrong in each. */
  laterBadIntervals: BadInterval[];
}

export interface BadInterval {
  /** Its start and end, seconds from the end of the overload. */
  fromS: number;
  toS: number;
  /** Defaults, refusals and errors the generator saw in it. */
  failures: number;
  /** p99 of its answers, ms; null when among misses or none. */
  p99Ms: number | null;
  answersPerS: number;
}

export interface RecoveryOptions {
  overloadRate: number;
  normalRate: number;
  sloMs: number;
  /** How many clean intervals in a row count as recovered (4 of 250 ms: one second). */
  cleanIntervals: number;
}

/** No failure and a p99 within the SLO; an interval with no answers at all shows nothing recovered. */
export function isClean(point: TimelinePoint, sloMs: number): boolean {
  return point.errors === 0 && point.p99 !== null && point.p99 <= sloMs && point.throughput > 0;
}

/**
 * Reads the recovery from a timeline holding a phase at `overloadRate` followed by one at `normalRate`. An
 * interval starts where the timeline's previous point ended. Undefined when either phase is missing.
 */
export function readRecovery(timeline: readonly TimelinePoint[], options: RecoveryOptions): Recovery | undefined {
  const lastOverload = lastIndexWhere(timeline, (p) => p.offered === options.overloadRate);
  if (lastOverload < 0) return undefined;
  const end = (timeline[lastOverload] as TimelinePoint).t;
  const normal: { point: TimelinePoint; fromS: number; toS: number; clean: boolean }[] = [];
  for (let i = lastOverload + 1; i < timeline.length; i++) {
    const point = timeline[i] as TimelinePoint;
    if (point.offered !== options.normalRate) continue;
    normal.push({ point, fromS: (timeline[i - 1] as TimelinePoint).t - end, toS: point.t - end, clean: isClean(point, options.sloMs) });
  }
  if (normal.length === 0) return undefined;
  const round = (s: number): number => Math.round(s * 100) / 100;
  const lastBad = lastIndexWhere(normal, (n) => !n.clean);
  const allCleanAfterS = lastBad < 0 ? 0 : lastBad === normal.length - 1 ? null : round((normal[lastBad] as (typeof normal)[number]).toS);
  const start = normal.findIndex((_, i) => i + options.cleanIntervals <= normal.length && normal.slice(i, i + options.cleanIntervals).every((n) => n.clean));
  if (start < 0) return { seconds: null, allCleanAfterS, laterBadIntervals: [] };
  return {
    seconds: round(Math.max(0, (normal[start] as (typeof normal)[number]).fromS)),
    allCleanAfterS,
    laterBadIntervals: normal
      .slice(start)
      .filter((n) => !n.clean)
      .map((n) => ({ fromS: round(n.fromS), toS: round(n.toS), failures: n.point.errors, p99Ms: n.point.p99, answersPerS: Math.round(n.point.throughput) })),
  };
}

/** `Array.prototype.findLastIndex`, which this project's ES2022 library typings do not have. */
function lastIndexWhere<T>(items: readonly T[], predicate: (item: T) => boolean): number {
  for (let i = items.length - 1; i >= 0; i--) if (predicate(items[i] as T)) return i;
  return -1;
}
