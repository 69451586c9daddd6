import type { ClusterSnapshot } from '../control/cluster-view.js';
/**
 * The live status page's data: one frame a second, computed from two readings of the server's counters (a
 * pure function of the previous reading, the current one and the time between them). No timers or I/O here;
 * the routes module takes the readings and sends the frames.
 */

/** Cumulative counts of one latency histogram: `le` bucket upper bounds (seconds) and counts (cumulative). */
export interface HistogramReading {
  bounds: readonly number[];
  counts: readonly number[];
}

/** What the server reports about one application at one instant (counters are cumulative). */
export interface AppReading {
  name: string;
  sloMs: number;
  linkedModels: readonly string[];
  policy: string;
  /** The policy's learned state, as getPolicyState returns it (null for stateless policies). */
  policyState: unknown;
  queries: number;
  answered: number;
  defaults: number;
  refused: number;
  cacheHits: number;
  cacheMisses: number;
  latency: HistogramReading | undefined;
}

export interface ReplicaReading {
  name: string;
  status: string;
  ready: boolean;
  batchLimit: number;
  outstanding: number;
  restarts: number;
  batches: number;
  rows: number;
}

export interface ModelReading {
  name: string;
  currentVersion: string;
  linkedApps: readonly string[];
  versions: readonly { version: string; replicas: readonly ReplicaReading[] }[];
}

export interface Reading {
  at: number;
  apps: readonly AppReading[];
  models: readonly ModelReading[];
}

/** One application in a frame: rates over the last interval. */
export interface AppFrame {
  name: string;
  sloMs: number;
  linkedModels: readonly string[];
  policy: string;
  queriesPerSecond: number;
  /** Shares of the queries answered in the interval (0 when none). */
  defaultRate: number;
  refusalRate: number;
  cacheHitRate: number;
  /** Estimated from the latency histogram's buckets in the interval (as Prometheus' histogram_quantile); null without queries. */
  p50Ms: number | null;
  p99Ms: number | null;
  /** Each linked model's weight (Exp4) or selection probability before exploration (Exp3), summing to 1. */
  weights: Record<string, number> | null;
  /** Users with a policy of their own (per-user policies). */
  users: number | null;
}

export interface ReplicaFrame {
  name: string;
  status: string;
  ready: boolean;
  batchLimit: number;
  queued: number;
  restarts: number;
  /** Rows per batch over the interval (null when no batch ran). */
  meanBatch: number | null;
}

export interface ModelFrame {
  name: string;
  currentVersion: string;
  linkedApps: readonly string[];
  versions: { version: string; current: boolean; replicas: ReplicaFrame[] }[];
}

export interface StatusFrame {
  at: number;
  intervalMs: number;
  apps: AppFrame[];
  models: ModelFrame[];
  /** Over NATS (`serve --nats`): the frontends sharing the control plane and the model containers announced. */
  cluster?: ClusterSnapshot;
}

/**
 * The `q` quantile (0-1) of the observations between two cumulative histogram readings, in ms: linear within
 * the bucket that holds it (Prometheus' histogram_quantile). Null when nothing was observed.
 */
export function histogramQuantile(q: number, before: HistogramReading | undefined, after: HistogramReading): number | null {
  const counts = after.counts.map((c, i) => c - (before?.counts[i] ?? 0));
  const total = counts.at(-1) ?? 0;
  if (total <= 0) return null;
  const rank = q * total;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i] as number;
    if (c >= rank) {
      const upper = after.bounds[i] as number;
      const lower = i === 0 ? 0 : (after.bounds[i - 1] as number);
      const below = i === 0 ? 0 : (counts[i - 1] as number);
      // Past the last finite bound (the +Inf bucket) the best estimate is that bound.
      if (!Number.isFinite(upper)) return lower * 1000;
      const inBucket = c - below;
      return (lower + (upper - lower) * (inBucket === 0 ? 1 : (rank - below) / inBucket)) * 1000;
    }
  }
  return null;
}

/** Normalised weights from a policy snapshot's log weights, over the models still linked. */
export function policyWeights(state: unknown, linked: readonly string[]): { weights: Record<string, number> | null; users: number | null } {
  if (typeof state !== 'object' || state === null) return { weights: null, users: null };
  const s = state as { kind?: string; logWeights?: Record<string, number>; shared?: unknown; users?: unknown[] };
  if (s.kind === 'keyed') return { weights: policyWeights(s.shared, linked).weights, users: Array.isArray(s.users) ? s.users.length : 0 };
  const logs = s.logWeights;
  if (logs === undefined) return { weights: null, users: null };
  const models = linked.filter((m) => typeof logs[m] === 'number');
  if (models.length === 0) return { weights: null, users: null };
  const max = Math.max(...models.map((m) => logs[m] as number));
  const raw = models.map((m) => Math.exp((logs[m] as number) - max));
  const sum = raw.reduce((a, b) => a + b, 0);
  return { weights: Object.fromEntries(models.map((m, i) => [m, (raw[i] as number) / sum])), users: null };
}

const rate = (part: number, whole: number): number => (whole > 0 ? part / whole : 0);

/** The frame for the interval between two readings (the first reading of a page has no `before`). */
export function statusFrame(before: Reading | undefined, after: Reading): StatusFrame {
  const intervalMs = before === undefined ? 0 : after.at - before.at;
  const seconds = intervalMs / 1000;
  const apps = after.apps.map((a): AppFrame => {
    const b = before?.apps.find((x) => x.name === a.name);
    const d = (f: (r: AppReading) => number): number => f(a) - (b === undefined ? f(a) : f(b));
    const answered = d((r) => r.answered);
    const finished = answered + d((r) => r.refused);
    const lookups = d((r) => r.cacheHits) + d((r) => r.cacheMisses);
    const { weights, users } = policyWeights(a.policyState, a.linkedModels);
    return {
      name: a.name,
      sloMs: a.sloMs,
      linkedModels: a.linkedModels,
      // The policy's kind (exp3, exp4, keyed, ...) says more than its display name.
      policy: (a.policyState as { kind?: string } | null)?.kind ?? a.policy,
      queriesPerSecond: seconds > 0 ? d((r) => r.queries) / seconds : 0,
      defaultRate: rate(d((r) => r.defaults), answered),
      refusalRate: rate(d((r) => r.refused), finished),
      cacheHitRate: rate(d((r) => r.cacheHits), lookups),
      p50Ms: a.latency === undefined || b === undefined ? null : histogramQuantile(0.5, b.latency, a.latency),
      p99Ms: a.latency === undefined || b === undefined ? null : histogramQuantile(0.99, b.latency, a.latency),
      weights,
      users,
    };
  });
  const models = after.models.map((m): ModelFrame => {
    const bm = before?.models.find((x) => x.name === m.name);
    return {
      name: m.name,
      currentVersion: m.currentVersion,
      linkedApps: m.linkedApps,
      versions: m.versions.map((v) => {
        const bv = bm?.versions.find((x) => x.version === v.version);
        return {
          version: v.version,
          current: v.version === m.currentVersion,
          replicas: v.replicas.map((r): ReplicaFrame => {
            const br = bv?.replicas.find((x) => x.name === r.name);
            const batches = r.batches - (br?.batches ?? r.batches);
            const rows = r.rows - (br?.rows ?? r.rows);
            return { name: r.name, status: r.status, ready: r.ready, batchLimit: r.batchLimit, queued: r.outstanding, restarts: r.restarts, meanBatch: batches > 0 ? rows / batches : null };
          }),
        };
      }),
    };
  });
  return { at: after.at, intervalMs, apps, models };
}
