import { DeadlineExceededError, OverloadedError } from '../errors.js';
import type { Answer } from '../api.js';
import type { CacheOutcome, Prediction } from './prediction-cache.js';
import type { QueryContext, SelectionPolicy } from '../selection/selection-policy.js';

/** One selected model's answer to one query, as the router collected it. */
export interface ModelEvaluation {
  readonly prediction: Prediction;
  readonly outcome: CacheOutcome;
  readonly timings?: Answer['timings'];
}

/** An answer before the router stamps it with its query id and latency. */
export type AnswerBody = Omit<Answer, 'queryId' | 'latencyMs'>;

/** Where one query stands when the router decides: what arrived, what failed, what is still out. */
export interface AnswerSituation {
  /** The selected models' answers that arrived, in selection order. */
  readonly arrived: readonly ModelEvaluation[];
  /** Selected models that have not answered yet (stragglers, when deciding at the deadline). */
  readonly missing: readonly string[];
  /** Selected models whose evaluation failed, with the error. */
  readonly failures: readonly { readonly model: string; readonly error: unknown }[];
  /** True when the deadline forces the decision; false when every selected model has answered or failed. */
  readonly atDeadline: boolean;
  /** The policy that selected the models (it combines their answers) and the query's context. */
  readonly policy: Pick<SelectionPolicy, 'name' | 'combine'>;
  readonly context: QueryContext | undefined;
}

/** What the application fixes: its SLO, confidence threshold and default output, and how scores become an output. */
export interface AnswerRules {
  readonly latencySloMs: number;
  readonly confidenceThreshold: number;
  readonly defaultOutput: Answer['output'];
  /** The output for a model's scores: the label for a classifier, the value(s) for a regressor. */
  toOutput(model: string, scores: Float32Array): Answer['output'];
}

/**
 * How one query is answered:
 * - `refuse`: its only model's queue refused it (admission control): the caller gets {@link OverloadedError}, HTTP 503,
 *   rather than a default answer, so a client backs off instead of mistaking overload for an answer;
 * - `default` with a reason: `noAnswer` (no model answered: all failed, or none arrived by the deadline; `late`
 *   when every one of them was admitted and missed its deadline, rather than failing or having no replica),
 *   `policyError` (the selection policy threw while combining: a policy fault must not take the query, or the
 *   process, down), `lowConfidence` (the models disagree more than the application allows);
 * - `model`: the policy's combination of the answers that arrived, stragglers and failures listed in `missing`.
 */
export type AnswerDecision =
  | { readonly kind: 'refuse'; readonly error: OverloadedError }
  | { readonly kind: 'default'; readonly reason: 'noAnswer'; readonly late: boolean; readonly answer: AnswerBody }
  | { readonly kind: 'default'; readonly reason: 'policyError' | 'lowConfidence'; readonly answer: AnswerBody }
  | { readonly kind: 'model'; readonly answer: AnswerBody };

/** An error's message for an explanation; a thrown non-Error as its string form. */
export function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** The application's default output with an explanation (and whatever the models did contribute). */
export function defaultAnswer(defaultOutput: Answer['output'], explanation: string, extra: Partial<AnswerBody> = {}): AnswerBody {
  return { output: defaultOutput, isDefault: true, explanation, cached: false, ...extra };
}

/**
 * Decides one query's answer (Clipper section 5.2.2: at the deadline an ensemble answers with the models that
 * made it and reports the stragglers; below the confidence threshold it answers with the default output).
 * Pure: no clock, no I/O; the policy's `combine` is the only code it calls, and any exception from it (or from
 * turning its result into an output) becomes a `policyError` default answer naming the error.
 *
 * @example
 * decideAnswer({ arrived: [], missing: ['a'], failures: [], atDeadline: true, policy, context: undefined }, rules);
 * // { kind: 'default', reason: 'noAnswer', answer: { output: -1, isDefault: true,
 * //   explanation: 'no answer from a within the 20 ms SLO', cached: false } }
 */
export function decideAnswer(situation: AnswerSituation, rules: AnswerRules): AnswerDecision {
  const { arrived, missing, failures, policy } = situation;
  if (arrived.length === 0) {
    // A full queue is admission control: refuse (503) rather than answer by default. Only when the refusal is
    // the whole story: with another model still out or failed otherwise, the default answer explains more.
    const only = failures.length === 1 && missing.length === 0 ? failures[0]?.error : undefined;
    if (only instanceof OverloadedError) return { kind: 'refuse', error: only };
    const late = failures.every((f) => f.error instanceof DeadlineExceededError) && (missing.length > 0 || failures.length > 0);
    return { kind: 'default', reason: 'noAnswer', late, answer: defaultAnswer(rules.defaultOutput, problemsOf(situation, rules).join('; ')) };
  }
  // Built only when some model is missing or failed (the common answer, every model in, allocates none of it).
  const stragglers = missing.length === 0 && failures.length === 0 ? undefined : [...missing, ...failures.map((f) => f.model)];
  let answer: AnswerBody;
  try {
    const combined = policy.combine(arrived.map((e) => e.prediction), situation.context);
    const confidence = combined.confidence ?? 1;
    const scores = combined.scores;
    const contributors = [...(combined.contributors ?? arrived.map((e) => e.prediction.model))];
    if (confidence < rules.confidenceThreshold) {
      const explanation = `confidence ${confidence.toFixed(2)} is below the application's threshold ${rules.confidenceThreshold}`;
      const shared: Partial<AnswerBody> = stragglers === undefined ? { scores, confidence, contributors } : { scores, confidence, contributors, missing: stragglers };
      return { kind: 'default', reason: 'lowConfidence', answer: defaultAnswer(rules.defaultOutput, explanation, shared) };
    }
    let cached = true;
    let timings: Answer['timings'];
    for (const e of arrived) {
      if (e.outcome !== 'hit') cached = false;
      if (timings === undefined) timings = e.timings;
    }
    // Written out field by field (no spreads): this object is made for every answered query.
    answer = { output: rules.toOutput(combined.model, scores), isDefault: false, model: combined.model, version: combined.version, cached, scores, confidence, contributors };
    if (stragglers !== undefined) answer.missing = stragglers;
    if (timings !== undefined) answer.timings = timings;
  } catch (error) {
    const explanation = `selection policy ${policy.name} failed to combine the answers of ${arrived.map((e) => e.prediction.model).join(', ')}: ${describeError(error)}`;
    return {
      kind: 'default',
      reason: 'policyError',
      answer: defaultAnswer(rules.defaultOutput, [explanation, ...problemsOf(situation, rules)].join('; '), stragglers === undefined ? {} : { missing: stragglers }),
    };
  }
  return { kind: 'model', answer };
}

/** What went wrong for an explanation: each failed model with its error, and the stragglers at the deadline. */
function problemsOf(situation: AnswerSituation, rules: AnswerRules): string[] {
  const problems = situation.failures.map((f) => `${f.model}: ${describeError(f.error)}`);
  if (situation.atDeadline && situation.missing.length > 0) problems.push(`no answer from ${situation.missing.join(', ')} within the ${rules.latencySloMs} ms SLO`);
  return problems;
}
