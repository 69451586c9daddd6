/** How one selected model's evaluation ended, or that it has not yet. */
type Slot<T> = { state: 'pending' } | { state: 'done'; value: T } | { state: 'failed'; error: unknown };

/**
 * Collects the answers of the models selected for one query and says when the query can be answered: as
 * soon as every model has answered or failed, or at the deadline with whatever arrived (Clipper section 5.2.2:
 * an ensemble answers at its deadline with the models that made it, and reports the stragglers). Pure: the
 * router feeds it arrivals and the deadline.
 */
export class QueryAssembly<T> {
  readonly models: readonly string[];
  readonly #slots: Slot<T>[];
  #open: number;

  constructor(models: readonly string[]) {
    this.models = models;
    this.#slots = models.map(() => ({ state: 'pending' }));
    this.#open = models.length;
  }

  /** True once every model has answered or failed. */
  get complete(): boolean {
    return this.#open === 0;
  }

  arrived(index: number, value: T): void {
    if (this.#slots[index]?.state !== 'pending') return;
    this.#slots[index] = { state: 'done', value };
    this.#open--;
  }

  failed(index: number, error: unknown): void {
    if (this.#slots[index]?.state !== 'pending') return;
    this.#slots[index] = { state: 'failed', error };
    this.#open--;
  }

  /** The answers that arrived, in selection order. */
  values(): T[] {
    return this.#slots.flatMap((s) => (s.state === 'done' ? [s.value] : []));
  }

  /** Models that had not answered (stragglers at the deadline). */
  pending(): string[] {
    return this.models.filter((_, i) => this.#slots[i]?.state === 'pending');
  }

  /** Models that failed, with their errors. */
  failures(): { model: string; error: unknown }[] {
    return this.models.flatMap((model, i) => {
      const slot = this.#slots[i] as Slot<T>;
      return slot.state === 'failed' ? [{ model, error: slot.error }] : [];
    });
  }
}
