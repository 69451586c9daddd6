import type { BatchingMode } from '../config/options.js';

export interface AimdSettings {
  mode: BatchingMode;
  maxBatchSize: number;
  initialBatchSize: number;
  additiveStep: number;
  backoffFactor: number;
}

/**
 * The batch-size controller of one replica: additive increase, multiplicative decrease (Clipper, NSDI 2017,
 * section 4.3.1). After each batch: if it took longer than the latency budget, the limit becomes
 * `floor(backoffFactor * limit)` (0.9 by default, as in Clipper's logs); if it finished within budget and was
 * full (so it actually tested the limit), the limit grows by `additiveStep`. Always within [1, maxBatchSize].
 *
 * `fixed` mode keeps the limit at `maxBatchSize`; `none` keeps it at 1. Pure: no clock, no I/O.
 */
export class AimdController {
  readonly #settings: AimdSettings;
  #limit: number;
  #increases = 0;
  #decreases = 0;

  constructor(settings: AimdSettings) {
    this.#settings = settings;
    this.#limit =
      settings.mode === 'none' ? 1 : settings.mode === 'fixed' ? settings.maxBatchSize : Math.min(settings.initialBatchSize, settings.maxBatchSize);
  }

  /** The most queries the next batch may take. */
  get limit(): number {
    return this.#limit;
  }

  get increases(): number {
    return this.#increases;
  }

  get decreases(): number {
    return this.#decreases;
  }

  /** Feeds back one finished batch: its size and how long it took against the budget. */
  observe(batchSize: number, latencyMs: number, budgetMs: number): void {
    if (this.#settings.mode !== 'aimd') return;
    if (latencyMs > budgetMs) {
      this.#limit = Math.max(1, Math.floor(this.#settings.backoffFactor * this.#limit));
      this.#decreases++;
    } else if (batchSize >= this.#limit && this.#limit < this.#settings.maxBatchSize) {
      this.#limit = Math.min(this.#settings.maxBatchSize, this.#limit + this.#settings.additiveStep);
      this.#increases++;
    }
  }
}
