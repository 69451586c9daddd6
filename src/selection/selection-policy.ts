import { InternalError } from '../errors.js';

/** One model's output for a query. */
export interface ModelOutput {
  readonly model: string;
  readonly version: string;
  readonly scores: Float32Array;
}

/** What the router knows about a query besides its input. */
export interface QueryContext {
  /** A user key, for policies that learn per user (Clipper personalised per `uid`). */
  readonly uid?: string;
}

/** What one draw selected, and with what probability (see {@link SelectionPolicy.selectionProbability}). */
export interface Selection {
  readonly models: readonly string[];
  /** The probability, at the moment of the draw, that the policy would select exactly `models`; in (0, 1]. */
  readonly probability: number;
}

/** The combined answer a policy makes from its models' outputs. */
export interface Combined {
  readonly scores: Float32Array;
  /** The model whose answer this is, or the ensemble's name. */
  readonly model: string;
  readonly version: string;
  /** Share of the contributing models whose own label equals the combined label, in [0, 1]. */
  readonly confidence?: number;
  /** The models whose outputs went into the answer. */
  readonly contributors?: readonly string[];
}

/** A policy's learned state, as plain JSON, for inspection and for surviving a restart. */
export type PolicySnapshot = { readonly kind: string } & Record<string, unknown>;

/**
 * The model selection layer's interface (Clipper, section 5): which linked models answer a query, how their
 * outputs combine, and (for learning policies such as Exp3 and Exp4) how feedback changes that.
 * Implementations are pure: no clock, no I/O; randomness comes from an injected source.
 */
export interface SelectionPolicy {
  readonly name: string;
  /** The models to query, chosen from those linked to the application. */
  select(linked: readonly string[], context?: QueryContext): readonly string[];
  /** Combines the outputs that arrived (never empty; may be fewer than selected, at a deadline). */
  combine(outputs: readonly ModelOutput[], context?: QueryContext): Combined;
  /**
   * Learns from feedback: each model's loss in [0, 1] on one input whose true label is now known. For a policy
   * that learns from its selection alone, `selection` is the draw this feedback answers (taken once, so a draw
   * teaches the policy at most once).
   */
  feedback?(losses: ReadonlyMap<string, number>, context?: QueryContext, selection?: Selection): void;
  /**
   * For a policy that draws at random and learns from its selection alone: the probability that
   * `select(linked, context)` returns `selected` in the policy's present state. The router asks right after
   * `select` (nothing changes the state in between), so this is the draw's own probability, which bandit
   * feedback must divide by (Exp3's importance weighting). Absent: the selection is deterministic (1).
   */
  selectionProbability?(selected: readonly string[], linked: readonly string[], context?: QueryContext): number;
  /**
   * Whose losses feedback should carry: `all` linked models (the default; full information), or only the
   * models this policy `selected` for that input (a bandit, such as Clipper's Exp3, which must learn only from
   * the arm it pulled). For `selected`, the router remembers recent draws by input and user (a
   * `SelectionLog`), and each feedback event takes one of them.
   */
  readonly learnsFrom?: 'all' | 'selected';
  /**
   * Whether `select(linked, context)` is sure to return every one of `linked` (and not throw), whatever the
   * context: then the models a query will ask are known before the query is read, and the HTTP edge may refuse
   * a query whose one model has no room before parsing it ({@link Clipper.refuseUnread}). Absent: not known, and
   * every query is read.
   */
  selectsAll?(linked: readonly string[]): boolean;
  snapshot?(): PolicySnapshot;
  restore?(snapshot: PolicySnapshot): void;
}

/**
 * The answer of a policy that selects one model: that model's output as it is (one model agrees with itself:
 * confidence 1). No output at all is the caller's bug (the router answers by default when no model answered),
 * hence {@link InternalError}, not an option error.
 */
export function chosenAnswer(policy: string, outputs: readonly ModelOutput[]): Combined {
  const first = outputs[0];
  if (first === undefined) throw new InternalError(`${policy}.combine needs at least one output; got none`);
  return { scores: first.scores, model: first.model, version: first.version, confidence: 1, contributors: [first.model] };
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

  /** One model linked, and it is the one named (if one is). */
  selectsAll(linked: readonly string[]): boolean {
    return linked.length === 1 && (this.#model === undefined || linked[0] === this.#model);
  }

  combine(outputs: readonly ModelOutput[]): Combined {
    return chosenAnswer(this.name, outputs);
  }
}
