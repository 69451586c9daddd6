/**
 * The number of values in one tensor of `shape` (the product of its dimensions; 1 for a scalar's `[]`).
 *
 * @example
 * elementCount([28, 28]); // 784
 */
export function elementCount(shape: readonly number[]): number {
  let n = 1;
  for (let i = 0; i < shape.length; i++) n *= shape[i] as number;
  return n;
}
