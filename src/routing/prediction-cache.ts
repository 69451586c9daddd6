import { createHash } from 'node:crypto';
import { LRUCache } from 'lru-cache';

/** One model's answer to one input. */
export interface Prediction {
  /** The model's output row (probabilities for a classifier). */
  readonly scores: Float32Array;
  readonly model: string;
  readonly version: string;
}

/** How a lookup was served, for metrics. */
export type CacheOutcome = 'hit' | 'miss' | 'shared' | 'disabled';

/** A SHA-1 of an input's bytes (only the view's bytes, not its whole buffer). */
export function inputDigest(input: ArrayBufferView): string {
  return createHash('sha1').update(new Uint8Array(input.buffer, input.byteOffset, input.byteLength)).digest('base64');
}

/**
 * The cache key: model, version and a digest of the input's bytes. The version is in the key, so rolling a
 * model forward or back never serves the other version's answers. A query asking several models hashes its
 * input once ({@link inputDigest}) and builds each model's key from that digest.
 */
export function predictionKey(model: string, version: string, input: ArrayBufferView | string): string {
  return `${model}@${version}#${typeof input === 'string' ? input : inputDigest(input)}`;
}

/**
 * The prediction cache (Clipper, section 4.2), on lru-cache, bounded in bytes. Concurrent identical queries
 * share one pending evaluation (lru-cache's `fetch` dedupes in-flight loads); a failed evaluation is not
 * cached, so the next query tries again.
 */
export class PredictionCache {
  readonly #lru: LRUCache<string, Prediction, () => Promise<Prediction>> | undefined;
  hits = 0;
  misses = 0;
  shared = 0;
  /** Joiners that looked again after the evaluation they shared failed (see {@link getOrEvaluate}). */
  rejoined = 0;

  constructor(maxBytes: number) {
    this.#lru =
      maxBytes > 0
        ? new LRUCache<string, Prediction, () => Promise<Prediction>>({
            maxSize: maxBytes,
            // The key holds the input's digest, not the input: an entry costs its scores plus its key.
            sizeCalculation: (value, key) => value.scores.byteLength + key.length * 2 + 64,
            fetchMethod: (_key, _stale, { context }) => context(),
            // An entry evicted while its evaluation runs must not abort the evaluation others wait on.
            ignoreFetchAbort: true,
          })
        : undefined;
  }

  get enabled(): boolean {
    return this.#lru !== undefined;
  }

  /** Entries held and bytes they count for. */
  get size(): { entries: number; bytes: number } {
    return { entries: this.#lru?.size ?? 0, bytes: this.#lru?.calculatedSize ?? 0 };
  }

  /**
   * Returns the cached prediction for `key`, joins a pending evaluation of it, or runs `evaluate` and caches
   * its result.
   *
   * A joiner shares the pending evaluation's fate, and that evaluation runs under the first caller's deadline,
   * not the joiner's. So when a shared evaluation fails and `retryShared(error)` says the failure was the
   * first caller's alone (refused at admission, or expired: the router passes "an overload or a deadline
   * error, and my own deadline has not passed"), the joiner looks the key up again: it runs `evaluate` itself,
   * under its own deadline, or joins the evaluation another joiner started first (and may look again if that
   * one fails too). An evaluation a caller ran itself is never retried: its failure is its own answer. This
   * cannot loop: every retry round is led by a different caller, who then leaves the round with its own
   * result. Without `retryShared`, joiners fail with the evaluation they joined.
   */
  async getOrEvaluate(
    key: string,
    evaluate: () => Promise<Prediction>,
    retryShared?: (error: unknown) => boolean,
  ): Promise<{ prediction: Prediction; outcome: CacheOutcome }> {
    if (this.#lru === undefined) return { prediction: await evaluate(), outcome: 'disabled' };
    const cached = this.#lru.get(key);
    if (cached !== undefined) {
      this.hits++;
      return { prediction: cached, outcome: 'hit' };
    }
    const status: LRUCache.Status<string, Prediction> = {};
    const pending = this.#lru.fetch(key, { context: evaluate, status });
    const outcome: CacheOutcome = status.fetch === 'inflight' ? 'shared' : 'miss';
    if (outcome === 'shared') this.shared++;
    else this.misses++;
    let prediction: Prediction | undefined;
    try {
      prediction = await pending;
    } catch (error) {
      if (outcome !== 'shared' || retryShared === undefined || !retryShared(error)) throw error;
      this.rejoined++;
      return this.getOrEvaluate(key, evaluate, retryShared);
    }
    if (prediction === undefined) throw new Error(`prediction cache: evaluation of ${key} produced nothing`);
    return { prediction, outcome };
  }

  /** The cached prediction, if any, without evaluating (feedback uses this). */
  peek(key: string): Prediction | undefined {
    return this.#lru?.peek(key);
  }

  clear(): void {
    this.#lru?.clear();
  }
}
