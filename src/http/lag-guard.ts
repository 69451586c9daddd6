import type { ModelInfo } from '../index.js';

/**
 * Whether the replicas' queues say the system is behind: some serving replica holds more than two full
 * batches (`outstanding > 2 * batchLimit`), so a query admitted now waits at least two batch times.
 *
 * The HTTP adapter refuses on event-loop lag only when this also holds (issue 15). Lag alone is no sign of
 * overload: one garbage-collection pause of 30 ms at 15% load pushes the sampled delay over the limit for a
 * whole sample interval, and refusing every query meanwhile turned each pause into a burst of hundreds of
 * 503s, while the queues (and the router's own admission, which sees them) had room.
 *
 * @example
 * if (eventLoopDelayMs > limitMs && queuesBehind(clipper.getModels())) refuse();
 */
export function queuesBehind(models: readonly ModelInfo[]): boolean {
  for (const model of models) {
    for (const version of model.versions) {
      for (const replica of version.replicas) {
        if (replica.ready && !replica.retired && replica.outstanding > 2 * Math.max(1, replica.batchLimit)) return true;
      }
    }
  }
  return false;
}
