/**
 * The load generator's own process (started by `runGeneratorProcess`): it sends the HTTP load so that the
 * generator never competes with the server for one event loop. Told what to do over the IPC channel; reports
 * progress, each rate, and the outcome the same way, then exits.
 */
import { GrpcTarget } from './grpc-target.js';
import { HttpTarget } from './http-target.js';
import { InputSource } from './input-source.js';
import { runLoad } from './load-runner.js';
import type { FromGenerator, GeneratorConfig, ToGenerator } from './generator-protocol.js';

let stopping = false;

function post(message: FromGenerator): Promise<void> {
  return new Promise((resolve) => {
    if (process.send === undefined || !process.connected) return resolve();
    process.send(message, undefined, {}, () => resolve());
  });
}

async function run(config: GeneratorConfig): Promise<void> {
  const options = { repeatShare: config.inputs.repeatShare, seed: config.inputs.seed };
  const { matrix, file } = config.inputs;
  const inputs =
    matrix !== undefined
      ? InputSource.fromMatrix(matrix.values, matrix.width, { ...options, tagRepeats: matrix.tagRepeats })
      : file !== undefined
        ? InputSource.fromFile(file, options)
        : InputSource.mnist(options);
  const target = config.grpc === undefined ? new HttpTarget(config.http, inputs) : new GrpcTarget(config.grpc, inputs);
  try {
    const outcome = await runLoad(target, config.load, {
      onProgress: (progress) => void post({ type: 'progress', progress }),
      onRate: (result) => void post({ type: 'rate', result }),
      shouldStop: () => stopping,
    });
    await post({ type: 'done', outcome, target: target.description, pid: process.pid });
  } finally {
    await target.close();
  }
}

if (process.send === undefined) {
  console.error('generator-process: start me with child_process.fork (runGeneratorProcess), not directly');
  process.exitCode = 2;
} else {
  process.on('message', (message: ToGenerator) => {
    if (message.type === 'stop') {
      stopping = true;
      return;
    }
    run(message.config).then(
      () => process.disconnect(),
      async (error: unknown) => {
        await post({ type: 'failed', message: error instanceof Error ? error.message : String(error) });
        process.disconnect();
      },
    );
  });
  // The parent going away (Ctrl-C, a crash) stops the load.
  process.on('disconnect', () => {
    stopping = true;
  });
}
