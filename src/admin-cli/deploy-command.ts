/**
 * `clipper-ts deploy PATH --app NAME`: one command from a model file to an application answering queries.
 * It copies the file into the model repository as the model's next version, writes its `config.json` from the
 * model's own input/output metadata (an ONNX file's graph; a JS module needs --input-shape), registers the
 * application if it does not exist, deploys and links the version through the admin API, and prints a curl
 * line that works.
 */
import { copyFileSync, existsSync, mkdirSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { elementCount, type InputType } from '../index.js';
import { AdminCallError, adminCall, exitCodes, joinNegativeValues } from './admin-client.js';
import { adminTarget, UsageError } from './admin-commands.js';

/** What `deploy` learned about a model file: the config it writes beside the copy. */
export interface InferredConfig {
  name: string;
  version: string;
  platform: 'onnxruntime' | 'js';
  input: { name?: string; dtype: InputType; shape: number[] };
  output: { name?: string; dtype?: string; shape?: number[]; kind: 'classification' | 'regression' };
}

const usage = `clipper-ts deploy PATH --app NAME [flags]

Copies PATH (an .onnx file, or a .mjs/.js module exporting predict(input, rows, featureShape)) into the model
repository as the next version of the model, writes its config.json, deploys it, links it to the application
(registering the application first if it does not exist) and prints a curl line to query it.

  --app NAME             the application to serve it (required)
  --name MODEL           the model's name (default: the file's name without its extension)
  --models DIR           the server's model repository (default $CLIPPER_MODELS, else the bundled models/)
  --replicas N           replicas of the new version (default: the server's)
  --input-shape D[,D]    one query's shape, without the batch dimension (required for a JS module)
  --input-type T         float32 or int32 (JS modules; default float32)
  --output-kind K        classification or regression (default: classification when a row has several values)
  --default-output V     the application's default output when it is registered here (default -1)
  --slo-ms N             the application's latency SLO when it is registered here (default 20)
  --query-url URL        the query port, for the printed curl line (default $CLIPPER_URL, else http://127.0.0.1:1337)
  --url URL, --token T   the admin API (default $CLIPPER_ADMIN_URL / $CLIPPER_ADMIN_TOKEN)
  --json                 print what was done as JSON`;

const modelName = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;

/** The next version of a model in the repository: one past the highest numeric version there, or 1. */
export function nextVersion(repository: string, model: string): string {
  const dir = path.join(repository, model);
  if (!existsSync(dir)) return '1';
  const numeric = readdirSync(dir)
    .filter((v) => /^\d+$/.test(v) && statSync(path.join(dir, v)).isDirectory())
    .map(Number);
  return String(numeric.length === 0 ? 1 : Math.max(...numeric) + 1);
}

function fixedDims(shape: readonly (number | string)[], what: string): number[] {
  // The leading dimension is the batch ("N", -1 or a symbol); every other one must be fixed.
  const rest = shape.slice(1);
  if (rest.length === 0 || rest.some((d) => typeof d !== 'number' || d < 1)) {
    throw new UsageError(`the model's ${what} has shape [${shape.join(', ')}]; expected a batch dimension followed by fixed sizes, e.g. [N, 784]`);
  }
  return rest as number[];
}

/** Reads an ONNX file's first input and output: names, element types and shapes. */
export async function inferOnnxConfig(file: string, name: string, version: string, outputKind?: string): Promise<InferredConfig> {
  const ort = await import('onnxruntime-node');
  const session = await ort.InferenceSession.create(file, { intraOpNumThreads: 1 });
  try {
    const input = session.inputMetadata[0];
    const output = session.outputMetadata[0];
    if (input === undefined || !input.isTensor || output === undefined || !output.isTensor) throw new UsageError(`${file} must have a tensor input and a tensor output`);
    if (input.type !== 'float32' && input.type !== 'int32') throw new UsageError(`${file}'s input ${input.name} is ${input.type}; clipper-ts serves float32 and int32 inputs`);
    const outShape = fixedDims(output.shape, `output ${output.name}`);
    const width = elementCount(outShape);
    return {
      name,
      version,
      platform: 'onnxruntime',
      input: { name: input.name, dtype: input.type, shape: fixedDims(input.shape, `input ${input.name}`) },
      output: { name: output.name, dtype: output.type, shape: outShape, kind: kindOf(outputKind, width) },
    };
  } finally {
    await session.release();
  }
}

function kindOf(given: string | undefined, width: number): 'classification' | 'regression' {
  if (given === undefined) return width > 1 ? 'classification' : 'regression';
  if (given !== 'classification' && given !== 'regression') throw new UsageError(`--output-kind must be classification or regression; got ${JSON.stringify(given)}`);
  return given;
}

/** Runs `clipper-ts deploy ...`; returns the exit code. */
export async function deployMain(argv: string[], out: (line: string) => void = console.log, err: (line: string) => void = console.error): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out(usage);
    return exitCodes.ok;
  }
  try {
    let parsed;
    try {
      const text = { type: 'string' } as const;
      parsed = parseArgs({
        args: joinNegativeValues(argv, new Set(['default-output'])),
        allowPositionals: true,
        options: {
          app: text, name: text, models: text, replicas: text, 'input-shape': text, 'input-type': text, 'output-kind': text,
          'default-output': text, 'slo-ms': text, 'query-url': text, url: text, token: text, json: { type: 'boolean' },
        },
      });
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
    const flags = parsed.values;
    const [source] = parsed.positionals;
    if (source === undefined || parsed.positionals.length > 1) throw new UsageError('expected one model file: clipper-ts deploy PATH --app NAME');
    if (flags.app === undefined) throw new UsageError('--app NAME is required: the application that will serve the model');
    if (!existsSync(source) || !statSync(source).isFile()) throw new UsageError(`no model file at ${JSON.stringify(source)}`);
    const ext = path.extname(source).toLowerCase();
    if (!['.onnx', '.mjs', '.js'].includes(ext)) throw new UsageError(`the model must be an .onnx file or a .mjs/.js module; got ${JSON.stringify(source)}`);
    const name = flags.name ?? path.basename(source, path.extname(source));
    if (!modelName.test(name)) throw new UsageError(`the model name ${JSON.stringify(name)} must be letters, digits, '.', '_' or '-' (pass --name)`);
    const { modelsDir } = await import('../index.js');
    const repository = path.resolve(flags.models ?? process.env.CLIPPER_MODELS ?? modelsDir);
    if (!existsSync(repository)) throw new UsageError(`the model repository ${repository} does not exist; pass the server's --models DIR as --models`);
    const replicas = flags.replicas === undefined ? undefined : Number(flags.replicas);
    if (replicas !== undefined && (!Number.isInteger(replicas) || replicas < 1)) throw new UsageError(`--replicas must be a positive integer; got ${JSON.stringify(flags.replicas)}`);
    const target = adminTarget(flags);

    const version = nextVersion(repository, name);
    let config: InferredConfig;
    if (ext === '.onnx') {
      config = await inferOnnxConfig(source, name, version, flags['output-kind']);
    } else {
      const shape = flags['input-shape'];
      if (shape === undefined) throw new UsageError('a JS model carries no shape metadata: pass --input-shape (e.g. 784)');
      const dims = shape.split(',').map((d) => Number(d.trim()));
      if (dims.some((d) => !Number.isInteger(d) || d < 1)) throw new UsageError(`--input-shape must be positive integers separated by commas; got ${JSON.stringify(shape)}`);
      const dtype = flags['input-type'] ?? 'float32';
      if (dtype !== 'float32' && dtype !== 'int32') throw new UsageError(`--input-type must be float32 or int32; got ${JSON.stringify(dtype)}`);
      config = { name, version, platform: 'js', input: { dtype, shape: dims }, output: { kind: kindOf(flags['output-kind'] ?? 'classification', 2) } };
    }
    const dir = path.join(repository, name, version);
    mkdirSync(dir, { recursive: true });
    const file = path.join(dir, ext === '.onnx' ? 'model.onnx' : `model${ext}`);
    copyFileSync(source, file);
    writeFileSync(path.join(dir, 'config.json'), `${JSON.stringify(config, null, 2)}\n`);

    const app = flags.app;
    let registered = false;
    try {
      await adminCall(target, 'get_application', { name: app });
    } catch (error) {
      if (!(error instanceof AdminCallError) || error.status !== 404) throw error;
      const defaultOutput = flags['default-output'] === undefined ? -1 : Number.isFinite(Number(flags['default-output'])) ? Number(flags['default-output']) : flags['default-output'];
      await adminCall(target, 'add_app', {
        name: app,
        input_type: config.input.dtype,
        input_shape: config.input.shape,
        default_output: defaultOutput,
        ...(flags['slo-ms'] === undefined ? {} : { latency_slo_ms: Number(flags['slo-ms']) }),
      });
      registered = true;
    }
    await adminCall(target, 'add_model', { model_name: name, model_version: version, model_data_path: file, ...(replicas === undefined ? {} : { replicas }) });
    await adminCall(target, 'add_model_links', { app_name: app, model_names: [name] });

    const size = elementCount(config.input.shape);
    const example = path.join(dir, 'example-request.json');
    writeFileSync(example, `${JSON.stringify({ input: new Array(size).fill(0) })}\n`);
    const queryUrl = (flags['query-url'] ?? process.env.CLIPPER_URL ?? 'http://127.0.0.1:1337').replace(/\/+$/, '');
    const curl = `curl -s -X POST ${queryUrl}/${encodeURIComponent(app)}/predict -H 'content-type: application/json' -d @${example}`;
    const summary = { model: name, version, file, config, application: app, registeredApplication: registered, curl };
    if (flags.json === true) out(JSON.stringify(summary, null, 2));
    else {
      out(`deployed ${name} version ${version} (${config.input.dtype}[${config.input.shape.join(',')}] -> ${config.output.kind}) from ${file}`);
      out(`${registered ? 'registered and linked' : 'linked to'} application ${app}; query it with:`);
      out(curl);
    }
    return exitCodes.ok;
  } catch (error) {
    if (error instanceof UsageError) {
      err(`clipper-ts deploy: ${error.message}\n\n${usage}`);
      return exitCodes.usage;
    }
    if (error instanceof AdminCallError) {
      err(`clipper-ts deploy: ${error.message}${error.code === undefined ? '' : ` (${error.code})`}`);
      return error.exitCode;
    }
    throw error;
  }
}

