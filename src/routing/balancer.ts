/** What the balancer sees of a replica. */
export interface ReplicaLoad {
  /** Whether it takes queries now (running, not restarting or draining). */
  readonly ready: boolean;
  /** Queries waiting in its queue plus rows in its running batch. */
  readonly outstanding: number;
}

/**
 * Picks the ready replica with the least outstanding work; ties go to the first at or after `start`, so a
 * caller that rotates `start` spreads equal load round-robin. Returns -1 when no replica is ready.
 * Pure (as Piscina's and Ray Serve's balancers are).
 */
export function leastOutstanding(replicas: readonly ReplicaLoad[], start = 0, exclude?: ReadonlySet<number>): number {
  let best = -1;
  let bestLoad = Number.POSITIVE_INFINITY;
  const n = replicas.length;
  for (let k = 0; k < n; k++) {
    const i = (start + k) % n;
    const r = replicas[i] as ReplicaLoad;
    if (!r.ready || exclude?.has(i)) continue;
    if (r.outstanding < bestLoad) {
      best = i;
      bestLoad = r.outstanding;
    }
  }
  return best;
}
