import { IMAGE_SIDE, IMAGE_SIZE, type Digits } from '../../src/data/mnist-data.js';

/**
 * The set followed by copies of every digit moved by each of `shifts` ([dy, dx] pixels, zero fill), in that
 * order: a fixed, seed-free augmentation for trainers that shuffle their own epochs.
 */
export function withShiftedCopies(set: Digits, labels: Uint8Array, shifts: readonly (readonly [number, number])[]): { set: Digits; labels: Uint8Array } {
  const copies = shifts.length + 1;
  const images = new Float32Array(set.count * copies * IMAGE_SIZE);
  const out = new Uint8Array(set.count * copies);
  images.set(set.images);
  out.set(labels);
  shifts.forEach(([dy, dx], c) => {
    const at = (c + 1) * set.count;
    for (let n = 0; n < set.count; n++) {
      const src = n * IMAGE_SIZE;
      const dst = (at + n) * IMAGE_SIZE;
      for (let y = Math.max(0, -dy); y < Math.min(IMAGE_SIDE, IMAGE_SIDE - dy); y++) {
        for (let x = Math.max(0, -dx); x < Math.min(IMAGE_SIDE, IMAGE_SIDE - dx); x++) {
          images[dst + (y + dy) * IMAGE_SIDE + x + dx] = set.images[src + y * IMAGE_SIDE + x];
        }
      }
      out[at + n] = labels[n];
    }
  });
  return { set: { images, labels: out, count: set.count * copies }, labels: out };
}

/** The digits moved one pixel up, down, left and right. */
export const ONE_PIXEL_SHIFTS: readonly (readonly [number, number])[] = [
  [-1, 0],
  [1, 0],
  [0, -1],
  [0, 1],
];
