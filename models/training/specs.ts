import type { CnnConfig } from './cnn.js';
import type { DenseConfig } from './dense.js';

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
} & ({ readonly trainer: 'dense'; readonly config: DenseConfig } | { readonly trainer: 'cnn'; readonly config: CnnConfig });

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
];
