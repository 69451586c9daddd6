const PENDING = 0;
const DONE = 1;
const FAILED = 2;

/** What {@link QueryAssembly.pending} and {@link QueryAssembly.failures} return when there is nothing: one shared, frozen array. */
const NONE: readonly never[] = Object.freeze([]);

/**
 * Collects the answers of the models selected for one query and says when the query can be answered: as
 * soon as every model has answered or failed, or at the deadline with whatever arrived (Clipper section 5.2.2:
 * an ensemble answers at its deadline with the models that made it, and reports the stragglers). Pure: the
 * router feeds it arrivals and the deadline.
 *
 * Per query, on the hot path: the state of each model is a small number and its value or error sits in one
 * array, and the lists asked for when deciding are made only when non-empty (a shared empty one otherwise).
 */
export class QueryAssembly<T> {
  readonly models: readonly string[];
  readonly #states: number[];
  /** Each model's answer (done) or error (failed). */
  readonly #results: unknown[];
  #open: number;
  #failed = 0;

  constructor(models: readonly string[]) {
    // A policy's select is typed, but runs foreign code: a non-array is a fault, and the router treats it as one.
    if (!Array.isArray(models)) throw new TypeError(`the selected models must be an array of names; got ${typeof models}`);
    this.models = models;
    this.#states = new Array<number>(models.length).fill(PENDING);
    this.#results = new Array<unknown>(models.length);
    this.#open = models.length;
  }

  /** True once every model has answered or failed. */
  get complete(): boolean {
    return this.#open === 0;
  }

  arrived(index: number, value: T): void {
    if (this.#states[index] !== PENDING) return;
    this.#states[index] = DONE;
    this.#results[index] = value;
    this.#open--;
  }

  failed(index: number, error: unknown): void {
    if (this.#states[index] !== PENDING) return;
    this.#states[index] = FAILED;
    this.#results[index] = error;
    this.#open--;
    this.#failed++;
  }

  /** The answers that arrived, in selection order. */
  values(): T[] {
    const out: T[] = [];
    for (let i = 0; i < this.#states.length; i++) if (this.#states[i] === DONE) out.push(this.#results[i] as T);
    return out;
  }

  /** Models that had not answered (stragglers at the deadline). */
  pending(): readonly string[] {
    if (this.#open === 0) return NONE;
    return this.models.filter((_, i) => this.#states[i] === PENDING);
  }

  /** Models that failed, with their errors. */
  failures(): readonly { model: string; error: unknown }[] {
    if (this.#failed === 0) return NONE;
    const out: { model: string; error: unknown }[] = [];
    for (let i = 0; i < this.#states.length; i++) if (this.#states[i] === FAILED) out.push({ model: this.models[i] as string, error: this.#results[i] });
    return out;
  }
}
