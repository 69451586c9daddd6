/**
 * `clipper-ts container --nats URL --model NAME --version V [--path P] [--threads N] [--id ID] [--models DIR]`:
 * runs one model container (container.ts) until SIGTERM or SIGINT, then drains and exits 0.
 */
import { parseArgs } from 'node:util';
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

export async function containerMain(argv: string[]): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        nats: { type: 'string' },
        model: { type: 'string' },
        version: { type: 'string' },
        path: { type: 'string' },
        threads: { type: 'string' },
        id: { type: 'string' },
        models: { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (error) {
    console.error(`clipper-ts container: ${(error as Error).message}\n\n${usage}`);
    return 2;
  }
  if (values.help === true) {
    console.log(usage);
    return 0;
  }
  if (values.nats === undefined || values.model === undefined || values.version === undefined) {
    console.error(`clipper-ts container: --nats, --model and --version are required\n\n${usage}`);
    return 2;
  }
  const threads = values.threads === undefined ? 1 : Number(values.threads);
  if (!Number.isInteger(threads) || threads < 1 || threads > 64) {
    console.error(`clipper-ts container: --threads must be an integer in [1, 64]; got ${JSON.stringify(values.threads)}`);
    return 2;
  }
  const container = await startContainer({
    nats: values.nats,
    model: values.model,
    version: values.version,
    repository: values.models ?? modelsDir,
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
