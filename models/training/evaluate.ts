import * as ort from 'onnxruntime-node';
import { IMAGE_SIZE, NUM_CLASSES, type Digits } from '../../src/data/mnist-data.js';
import { INPUT_NAME, OUTPUT_NAME } from './onnx-graph.js';

/** Single-threaded session: the per-row cost we record is for one intra-op thread, as a replica actor runs it. */
export async function openSession(modelPath: string): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(modelPath, { intraOpNumThreads: 1, interOpNumThreads: 1 });
}

/** Runs every digit of `set` through the session (100 rows a run: the test-time-shift model makes 49 copies of each) and returns the fraction classified correctly. */
export async function onnxAccuracy(session: ort.InferenceSession, set: Digits, batch = 100): Promise<number> {
  let correct = 0;
  for (let start = 0; start < set.count; start += batch) {
    const n = Math.min(batch, set.count - start);
    const input = new ort.Tensor('float32', set.images.subarray(start * IMAGE_SIZE, (start + n) * IMAGE_SIZE), [n, IMAGE_SIZE]);
    const out = await session.run({ [INPUT_NAME]: input });
    const probs = out[OUTPUT_NAME].data as Float32Array;
    for (let r = 0; r < n; r++) {
      let best = 0;
      for (let c = 1; c < NUM_CLASSES; c++) if (probs[r * NUM_CLASSES + c] > probs[r * NUM_CLASSES + best]) best = c;
      if (best === set.labels[start + r]) correct++;
    }
  }
  return correct / set.count;
}

export interface RowCost {
  /** Median microseconds per row at `batch` rows per `session.run`, one intra-op thread. */
  readonly microsecondsPerRow: number;
  /** Fastest sample, for reference (least disturbed by other load on the machine). */
  readonly minMicrosecondsPerRow: number;
  readonly batch: number;
  readonly samples: number;
}

/**
 * Measures per-row inference cost of several sessions: warm-up, then `samples` rounds in which every session in turn
 * times `runsPerSample` back-to-back runs of the same fixed batch of held-out digits. Interleaving the sessions
 * spreads any background load evenly across models. Reports per session the median (and minimum) sample divided by
 * rows. Wall-clock, so absolute values vary between machines; the ratios are what matter.
 */
export async function measureRowCosts(
  sessions: readonly ort.InferenceSession[],
  set: Digits,
  batch = 64,
  samples = 21,
  runsPerSample = 10,
): Promise<RowCost[]> {
  const input = new ort.Tensor('float32', set.images.slice(0, batch * IMAGE_SIZE), [batch, IMAGE_SIZE]);
  const feeds = { [INPUT_NAME]: input };
  for (const session of sessions) for (let i = 0; i < 20; i++) await session.run(feeds);
  const perRow: number[][] = sessions.map(() => []);
  for (let s = 0; s < samples; s++) {
    for (let m = 0; m < sessions.length; m++) {
      const t0 = process.hrtime.bigint();
      for (let r = 0; r < runsPerSample; r++) await sessions[m].run(feeds);
      const ns = Number(process.hrtime.bigint() - t0);
      perRow[m].push(ns / 1000 / runsPerSample / batch);
    }
  }
  return perRow.map((xs) => {
    xs.sort((a, b) => a - b);
    return { microsecondsPerRow: xs[Math.floor(xs.length / 2)], minMicrosecondsPerRow: xs[0], batch, samples };
  });
}
