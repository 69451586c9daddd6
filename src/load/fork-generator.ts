import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { IMAGE_SIZE, loadMnist } from '../index.js';
import type { FromGenerator, GeneratorConfig, ToGenerator } from './generator-protocol.js';
import type { LoadOutcome, LoadProgress } from './load-runner.js';
import type { RateResult } from './load-run.js';

export interface GeneratorHandlers {
  onProgress?(progress: LoadProgress): void;
  onRate?(result: RateResult): void;
  /** Aborting asks the generator to stop sending; it still reports what it measured. */
  signal?: AbortSignal;
}

/** The generator module beside this one: compiled `.js` under dist/, or `.ts` under a TypeScript loader. */
const generatorModule = fileURLToPath(new URL(`./generator-process${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));

/**
 * Runs HTTP load from a process of its own (child_process.fork), so the generator does not steal the event
 * loop of a server in this process, nor share its garbage collections. Resolves with what it measured.
 *
 * @example
 * const { outcome } = await runGeneratorProcess({ http: { url, protocol: 'oip', model: 'mnist-mlp' }, inputs: { repeatShare: 0, seed: 1 }, load: resolveLoadSettings({ rates: [2000] }) });
 */
export function runGeneratorProcess(config: GeneratorConfig, handlers: GeneratorHandlers = {}): Promise<{ outcome: LoadOutcome; target: string; pid: number }> {
  return new Promise((resolve, reject) => {
    const child = fork(generatorModule, [], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'], serialization: 'advanced' });
    let settled = false;
    const stop = (): void => {
      if (child.connected) child.send({ type: 'stop' } satisfies ToGenerator);
    };
    handlers.signal?.addEventListener('abort', stop, { once: true });
    child.on('message', (message: FromGenerator) => {
      if (message.type === 'progress') handlers.onProgress?.(message.progress);
      else if (message.type === 'rate') handlers.onRate?.(message.result);
      else if (message.type === 'done') {
        settled = true;
        resolve({ outcome: message.outcome, target: message.target, pid: message.pid });
      } else if (message.type === 'failed') {
        settled = true;
        reject(new Error(`load generator failed: ${message.message}`));
      }
    });
    child.on('error', (error) => {
      if (!settled) reject(error);
      settled = true;
    });
    child.on('exit', (code, signal) => {
      handlers.signal?.removeEventListener('abort', stop);
      if (!settled) reject(new Error(`load generator exited (${signal ?? `code ${code}`}) before reporting`));
      settled = true;
    });
    const inputs =
      config.inputs.file === undefined && config.inputs.matrix === undefined
        ? { ...config.inputs, matrix: { values: loadMnist().test.images, width: IMAGE_SIZE, tagRepeats: true } }
        : config.inputs;
    child.send({ type: 'run', config: { ...config, inputs } } satisfies ToGenerator);
  });
}
