/** One model's output for a query. */
export interface ModelOutput {
  readonly model: string;
  readonly version: string;
  readonly scores: Float32Array;
}

/** The combined answer a policy makes from its models' outputs. */
export interface Combined {
  readonly scores: Float32Array;
  /** The model whose answer this is, or a description of the ensemble. */
  readonly model: string;
  readonly version: string;
}

/**
 * The model selection layer's interface (Clipper, section 5): which linked models answer a query, and how
 * their outputs combine. The router asks it on every query; learning policies (Exp3, Exp4) also take
 * feedback.
 */
export interface SelectionPolicy {
  readonly name: string;
  /** The models to query, chosen from those linked to the application. */
  select(linked: readonly string[]): readonly string[];
  /** Combines the outputs that arrived (never empty). */
  combine(outputs: readonly ModelOutput[]): Combined;
}

/**
 * One model answers every query: the first linked model, or the one named. Its current version is whatever
 * the model's current version is, so rolling a model forward or back needs no policy change.
 */
export class StaticPolicy implements SelectionPolicy {
  readonly name = 'static';
  readonly #model: string | undefined;

  constructor(model?: string) {
    this.#model = model;
  }

  select(linked: readonly string[]): readonly string[] {
    if (this.#model !== undefined) return linked.includes(this.#model) ? [this.#model] : [];
    return linked.length > 0 ? [linked[0] as string] : [];
  }

  combine(outputs: readonly ModelOutput[]): Combined {
    const first = outputs[0] as ModelOutput;
    return { scores: first.scores, model: first.model, version: first.version };
  }
}
