/**
 * `clipper-ts container --nats URL --model NAME --version V [--path P] [--threads N] [--id ID] [--models DIR]`:
 * runs one model container (container.ts) until SIGTERM or SIGINT, then drains and exits 0.
 */
import { parseArgs } from 'node:util';
import { InvalidOptionError } from '../errors.js';
import { modelsDir } from '../paths.js';
import { startContainer } from './container.js';

const usage = `clipper-ts container --nats URL --model NAME --version V [--path P] [--threads N] [--id ID] [--models DIR]

  --nats URL      NATS server(s), comma-separated (nats://127.0.0.1:4222)
  --model NAME    the model to serve
  --version V     its version
  --path P        the model file (default <models>/<NAME>/<V>/model.onnx); config.json beside it gives the input
  --threads N     onnxruntime intra-op threads (default 1)
  --id ID         container id, 1-32 lower-case letters or digits (default random)
  --models DIR    model repository (default: the bundled models/)

Answers batches on clipper.v1.infer.<model>.<version>.<id> and announces itself in the JetStream key-value
bucket clipper-containers; drains on SIGTERM (README, "Running on more than one machine").`;

/** The flags `clipper-ts container` takes (node:util parseArgs options); the deploy/ manifests are checked against them. */
export const containerOptions = {
  nats: { type: 'string' },
  model: { type: 'string' },
  version: { type: 'string' },
  path: { type: 'string' },
  threads: { type: 'string' },
  id: { type: 'string' },
  models: { type: 'string' },
  help: { type: 'boolean' },
} as const;

export interface ContainerArgs {
  nats: string;
  model: string;
  version: string;
  path: string | undefined;
  threads: number;
  id: string | undefined;
  models: string;
  help: boolean;
}

/** Parses `clipper-ts container` flags; throws {@link InvalidOptionError} naming what was wrong. */
export function parseContainerArgs(argv: readonly string[]): ContainerArgs {
  let values;
  try {
    ({ values } = parseArgs({ args: [...argv], options: containerOptions, strict: true, allowPositionals: false }));
  } catch (error) {
    throw new InvalidOptionError((error as Error).message);
  }
  if (values.help === true) return { nats: '', model: '', version: '', path: undefined, threads: 1, id: undefined, models: modelsDir, help: true };
  if (values.nats === undefined || values.model === undefined || values.version === undefined) {
    throw new InvalidOptionError('--nats, --model and --version are required');
  }
  const threads = values.threads === undefined ? 1 : Number(values.threads);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    throw new InvalidOptionError(`--threads must be an integer in [1, 64]; got ${JSON.stringify(values.threads)}`);
  }
  return { nats: values.nats, model: values.model, version: values.version, path: values.path, threads, id: values.id, models: values.models ?? modelsDir, help: false };
}

export async function containerMain(argv: string[]): Promise<number> {
  let values: ContainerArgs;
  try {
    values = parseContainerArgs(argv);
  } catch (error) {
    console.error(`clipper-ts container: ${(error as Error).message}\n\n${usage}`);
    return 2;
  }
  if (values.help) {
    console.log(usage);
    return 0;
  }
  const threads = values.threads;
  const container = await startContainer({
    nats: values.nats,
    model: values.model,
    version: values.version,
    repository: values.models,
    threads,
    ...(values.path === undefined ? {} : { path: values.path }),
    ...(values.id === undefined ? {} : { id: values.id }),
    log: (line) => console.log(`clipper-ts container: ${line}`),
  });
  console.log(`clipper-ts container ${container.id} ready: ${container.subject}`);
  const stop = (signal: string): void => {
    console.log(`clipper-ts container: ${signal}`);
    container.drain().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(error);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  return -1;
}
