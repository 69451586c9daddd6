import type { CnnConfig } from './cnn.js';
import type { DenseConfig } from './dense.js';
import type { KnnConfig } from './knn.js';

/** One model/version the pipeline trains: everything that determines its bytes is in here. */
export type ModelSpec = {
  readonly name: string;
  readonly version: string;
  readonly architecture: string;
  readonly description: string;
  /** Rough relative training cost (for longest-job-first scheduling only; does not affect the result). */
  readonly trainingWeight: number;
  /** Train on a seeded random permutation of the training labels (a deliberately broken model). */
  readonly shuffledLabels?: { readonly seed: number };
  /** Train on the digits plus copies moved one pixel up, down, left and right (5x the data, no randomness). */
  readonly shiftedCopies?: boolean;
  /**
   * Test-time augmentation: the exported graph runs the trained net on the (2r+1)^2 copies of each digit shifted
   * by -r..r pixels and averages their logits (r = this value); training is unchanged. Multiplies the cost per row.
   */
  readonly testTimeShifts?: number;
  /** The largest batch config.json allows (default 256). */
  readonly maxBatchSize?: number;
} & (
  | { readonly trainer: 'dense'; readonly config: DenseConfig }
  | { readonly trainer: 'cnn'; readonly config: CnnConfig }
  | { readonly trainer: 'knn'; readonly config: KnnConfig }
);

const MLP_CONFIG: Omit<DenseConfig, 'seed'> = { hidden: [256, 256], epochs: 8, batchSize: 32, learningRate: 1e-3, lrDecay: 0.75 };

/** Catalogue order (cheapest first). `trainingWeight` is a rough relative training cost used to schedule the longest jobs first. */
export const MODEL_SPECS: readonly ModelSpec[] = [
  {
    name: 'mnist-linear',
    version: '1',
    architecture: '784-10 softmax regression',
    description: 'Multinomial logistic regression: the cheapest and least accurate model.',
    trainer: 'dense',
    trainingWeight: 1,
    config: { hidden: [], epochs: 10, batchSize: 32, learningRate: 3e-3, lrDecay: 0.8, seed: 2017_01 },
  },
  {
    name: 'mnist-mlp',
    version: '1',
    architecture: '784-256-256-10 ReLU',
    description: 'Two-hidden-layer perceptron.',
    trainer: 'dense',
    trainingWeight: 30,
    config: { ...MLP_CONFIG, seed: 2017_02 },
  },
  {
    name: 'mnist-mlp',
    version: '2-broken',
    architecture: '784-256-256-10 ReLU',
    description:
      'DELIBERATELY BROKEN: same architecture and recipe as mnist-mlp/1 but trained on randomly permuted labels, ' +
      'so it is near chance on held-out digits. Used to test that model selection routes away from a degraded version.',
    trainer: 'dense',
    trainingWeight: 30,
    config: { ...MLP_CONFIG, seed: 2017_03 },
    shuffledLabels: { seed: 2017_99 },
  },
  {
    name: 'mnist-cnn',
    version: '1',
    architecture: 'conv3x3x8-ReLU-maxpool2-conv3x3x16-ReLU-maxpool2-dense64-ReLU-dense10',
    description: 'Small convolutional net: the most accurate and the most expensive per row.',
    trainer: 'cnn',
    trainingWeight: 35,
    config: { c1: 8, c2: 16, hidden: 64, epochs: 5, batchSize: 32, learningRate: 2e-3, lrDecay: 0.7, seed: 2017_04 },
  },
  {
    name: 'mnist-cnn-aug',
    version: '1',
    architecture: 'conv3x3x8-ReLU-maxpool2-conv3x3x16-ReLU-maxpool2-dense64-ReLU-dense10, trained on randomly shifted digits',
    description:
      'The small CNN with another seed, trained on digits moved by a random -2..2 pixels in each direction every time ' +
      'they are drawn: about as accurate as mnist-cnn, wrong on other digits (an ensemble member).',
    trainer: 'cnn',
    trainingWeight: 35,
    config: { c1: 8, c2: 16, hidden: 64, epochs: 5, batchSize: 32, learningRate: 2e-3, lrDecay: 0.7, seed: 2017_05, shift: 2 },
  },
  {
    name: 'mnist-mlp-aug',
    version: '1',
    architecture: '784-256-256-10 ReLU, trained on the digits and their one-pixel shifts',
    description:
      'The two-hidden-layer perceptron trained on five times the data: every training digit and its copies moved one ' +
      'pixel up, down, left and right (an ensemble member).',
    trainer: 'dense',
    trainingWeight: 40,
    shiftedCopies: true,
    config: { hidden: [256, 256], epochs: 3, batchSize: 32, learningRate: 1e-3, lrDecay: 0.6, seed: 2017_07 },
  },
  {
    name: 'mnist-knn',
    version: '1',
    architecture: '5 nearest neighbours among the 8,000 training digits in their 50 principal components',
    description:
      'k-nearest neighbours, a different kind of model from the nets: the query is projected on the top 50 principal ' +
      'components of the training digits and the 5 nearest training digits vote (nearest counts most); ' +
      'probabilities are the softmax of the votes (an ensemble member).',
    trainer: 'knn',
    trainingWeight: 2,
    config: { components: 50, iterations: 30, k: 5, scale: 1, rankDecay: 0.1, seed: 2017_06 },
  },
  {
    name: 'mnist-cnn-tta',
    version: '1',
    architecture:
      'conv3x3x24-ReLU-maxpool2-conv3x3x48-ReLU-maxpool2-dense128-ReLU-dense10 on 49 shifted copies of the digit, logits averaged',
    description:
      'The heavy model: a wider CNN trained on randomly shifted digits, run at inference on every shift of the digit ' +
      'by -3..3 pixels in each direction (test-time augmentation), its 49 logit rows averaged: about 1 ms a row on ' +
      'one thread, so compute, not framework overhead, decides its throughput.',
    trainer: 'cnn',
    trainingWeight: 120,
    testTimeShifts: 3,
    maxBatchSize: 64,
    config: { c1: 24, c2: 48, hidden: 128, epochs: 5, batchSize: 32, learningRate: 2e-3, lrDecay: 0.7, seed: 2017_08, shift: 2 },
  },
];
