import { InvalidOptionError } from '../errors.js';

/**
 * The index of the largest score (the first one on ties), or -1 for an empty row. NaN never wins: a row of
 * NaNs has no label.
 *
 * @example
 * argmax(Float32Array.of(0.1, 0.7, 0.2)); // 1
 */
export function argmax(scores: ArrayLike<number>): number {
  let best = -1;
  let bestScore = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < scores.length; i++) {
    const s = scores[i];
    if (s > bestScore || (best < 0 && s === Number.NEGATIVE_INFINITY)) {
      best = i;
      bestScore = s;
    }
  }
  return best;
}

/**
 * Classification loss: 0 when the row's argmax is `label`, else 1. The loss Clipper's Exp3 and Exp4 learn from
 * on classification tasks (section 5).
 *
 * @example
 * zeroOneLoss(Float32Array.of(0.1, 0.9), 1); // 0
 */
export function zeroOneLoss(scores: ArrayLike<number>, label: number): number {
  return argmax(scores) === label ? 0 : 1;
}

function checkScale(scale: number): void {
  if (typeof scale !== 'number' || !Number.isFinite(scale) || scale <= 0) {
    throw new InvalidOptionError(`loss scale must be a finite number > 0; got ${String(scale)}`);
  }
}

/**
 * Regression loss `|pred - truth| / scale`, clipped to [0, 1]: `scale` is the error at which a prediction counts
 * as wholly wrong. The policies' updates assume losses in [0, 1] (Exp3's regret bound does), hence the clip.
 * A non-finite prediction is wholly wrong (loss 1).
 *
 * @example
 * absoluteLoss(3, 5, 4); // 0.5
 */
export function absoluteLoss(pred: number, truth: number, scale: number): number {
  checkScale(scale);
  const loss = Math.abs(pred - truth) / scale;
  return Number.isNaN(loss) ? 1 : Math.min(1, loss);
}

/**
 * Regression loss `((pred - truth) / scale)^2`, clipped to [0, 1]; as {@link absoluteLoss}, `scale` is the
 * error at which the loss reaches 1, and a non-finite prediction scores 1.
 *
 * @example
 * squaredLoss(3, 5, 4); // 0.25
 */
export function squaredLoss(pred: number, truth: number, scale: number): number {
  checkScale(scale);
  const r = (pred - truth) / scale;
  const loss = r * r;
  return Number.isNaN(loss) ? 1 : Math.min(1, loss);
}

/**
 * Checks a feedback event's losses: every key a string, every loss a finite number in [0, 1]. Policies call it
 * before changing any weight, so a bad event changes nothing. `what` names the caller (`exp3.feedback`).
 */
export function checkLosses(what: string, losses: ReadonlyMap<string, number>): void {
  if (!(losses instanceof Map)) throw new InvalidOptionError(`${what} takes a Map of model name to loss; got ${typeof losses}`);
  // forEach rather than for-of: no [key, value] array per entry, and this runs on every feedback event.
  losses.forEach((loss, model) => {
    if (typeof model !== 'string' || model.length === 0) {
      throw new InvalidOptionError(`${what}: model names must be non-empty strings; got ${JSON.stringify(model) ?? String(model)}`);
    }
    if (typeof loss !== 'number' || !(loss >= 0 && loss <= 1)) {
      throw new InvalidOptionError(`${what}: the loss of ${model} must be a number in [0, 1]; got ${String(loss)}`);
    }
  });
}
