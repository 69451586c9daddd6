import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { InvalidOptionError, modelsDir } from '../index.js';

/** Everything `clipper-ts serve` can be told. */
export interface ServeSettings {
  /** Query port (Clipper REST, OIP, /metrics). Clipper's default: 1337. 0 picks a free port. */
  port: number;
  host: string;
  /** Admin port (management API, OIP repository). Clipper's default: 1338. */
  adminPort: number;
  /**
   * gRPC port (the Open Inference Protocol's gRPC service, src/grpc) on `host`. Triton's default: 8001; 0 turns it
   * off. `'free'`: a free port, which it is when `port` is 0 and no gRPC port is given (so servers started on
   * free ports, as tests and benchmarks do, never fight over 8001).
   */
  grpcPort: number | 'free';
  /** Loopback by default; any other address needs `adminToken`. */
  adminHost: string;
  adminToken: string | undefined;
  modelRepository: string;
  /** Replicas per bundled model. */
  replicas: number;
  /** Deploy the bundled MNIST models and the `digits` application at start. */
  bundled: boolean;
  /** The bundled `digits` application's latency SLO, ms. */
  sloMs: number;
  /** The bundled `digits` application's selection policy: an Exp4 ensemble of all three models by default. */
  policy: 'static' | 'exp3' | 'exp4';
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /** Largest request body, bytes. */
  bodyLimit: number;
  /** Most numbers in one request array. */
  maxArrayLength: number;
  /** OIP infer timeout when the request sets none, ms. */
  inferTimeoutMs: number;
  /** Refuse queries (503, before reading them) while the event loop lags more than this, ms; 0 = never. */
  maxEventLoopDelayMs: number;
  /** How long a graceful shutdown may take before the process exits anyway, ms. */
  shutdownTimeoutMs: number;
  /** OpenTelemetry: the OTLP/HTTP collector traces are sent to (`http://host:4318`); none when undefined. */
  otlpEndpoint: string | undefined;
  /**
   * NATS server URL(s), comma-separated: the control plane (applications, models, links, replica targets,
   * policies) lives in the JetStream key-value bucket `clipper-config`, shared by every frontend on it, and
   * feedback goes through the `CLIPPER_FEEDBACK` stream. Unset: one server on its own, state in `state`.
   */
  nats: string | undefined;
  /**
   * Without `nats`: the file the control-plane state is kept in (written atomically, read back at start).
   * Default `clipper-state.json` in the working directory, except for a server on a free port (`port` 0, as
   * tests and benchmarks start), which keeps none unless given one. `undefined` (or `off`): no state file.
   */
  state: string | undefined;
  /**
   * With `nats`: run models in model containers (`clipper-ts container`) instead of this process's threads:
   * the bundled models, and those added through the admin API unless `add_model` says `remote: false`. Every
   * container announced for a version becomes one of its replicas, in every frontend.
   */
  remote: boolean;
  /**
   * The HTTP status of a query refused for overload (admission control, the event-loop guard): 503 (default)
   * or 429. Some load balancers eject a backend that answers 503 (while 429 says "this request, not this
   * server"); gRPC always answers UNAVAILABLE.
   */
  shedStatus: 429 | 503;
}

export const serveDefaults: Readonly<ServeSettings> = Object.freeze({
  port: 1337,
  host: '0.0.0.0',
  adminPort: 1338,
  grpcPort: 8001,
  adminHost: '127.0.0.1',
  adminToken: undefined,
  modelRepository: modelsDir,
  replicas: 1,
  bundled: true,
  sloMs: 20,
  policy: 'exp4',
  logLevel: 'info',
  bodyLimit: 8 * 1024 * 1024,
  maxArrayLength: 1_000_000,
  inferTimeoutMs: 1000,
  maxEventLoopDelayMs: 25,
  shutdownTimeoutMs: 10_000,
  otlpEndpoint: undefined,
  nats: undefined,
  state: 'clipper-state.json',
  remote: false,
  shedStatus: 503,
});

type Kind = 'port' | 'int' | 'string' | 'bool' | 'level' | 'policy' | 'shed';
const spec: Record<keyof ServeSettings, { flag: string; env: string; kind: Kind; min?: number }> = {
  port: { flag: 'port', env: 'CLIPPER_PORT', kind: 'port' },
  host: { flag: 'host', env: 'CLIPPER_HOST', kind: 'string' },
  adminPort: { flag: 'admin-port', env: 'CLIPPER_ADMIN_PORT', kind: 'port' },
  grpcPort: { flag: 'grpc-port', env: 'CLIPPER_GRPC_PORT', kind: 'port' },
  adminHost: { flag: 'admin-host', env: 'CLIPPER_ADMIN_HOST', kind: 'string' },
  adminToken: { flag: 'admin-token', env: 'CLIPPER_ADMIN_TOKEN', kind: 'string' },
  modelRepository: { flag: 'models', env: 'CLIPPER_MODELS', kind: 'string' },
  replicas: { flag: 'replicas', env: 'CLIPPER_REPLICAS', kind: 'int', min: 0 },
  bundled: { flag: 'bundled', env: 'CLIPPER_BUNDLED', kind: 'bool' },
  sloMs: { flag: 'slo-ms', env: 'CLIPPER_SLO_MS', kind: 'int', min: 1 },
  policy: { flag: 'policy', env: 'CLIPPER_POLICY', kind: 'policy' },
  logLevel: { flag: 'log-level', env: 'CLIPPER_LOG_LEVEL', kind: 'level' },
  bodyLimit: { flag: 'body-limit', env: 'CLIPPER_BODY_LIMIT', kind: 'int', min: 1024 },
  maxArrayLength: { flag: 'max-array-length', env: 'CLIPPER_MAX_ARRAY_LENGTH', kind: 'int', min: 1 },
  inferTimeoutMs: { flag: 'infer-timeout-ms', env: 'CLIPPER_INFER_TIMEOUT_MS', kind: 'int', min: 1 },
  maxEventLoopDelayMs: { flag: 'max-event-loop-delay-ms', env: 'CLIPPER_MAX_EVENT_LOOP_DELAY_MS', kind: 'int', min: 0 },
  shutdownTimeoutMs: { flag: 'shutdown-timeout-ms', env: 'CLIPPER_SHUTDOWN_TIMEOUT_MS', kind: 'int', min: 1 },
  // OpenTelemetry's own variable, as every OTLP exporter reads it.
  otlpEndpoint: { flag: 'otlp-endpoint', env: 'OTEL_EXPORTER_OTLP_ENDPOINT', kind: 'string' },
  nats: { flag: 'nats', env: 'CLIPPER_NATS', kind: 'string' },
  state: { flag: 'state', env: 'CLIPPER_STATE', kind: 'string' },
  remote: { flag: 'remote', env: 'CLIPPER_REMOTE', kind: 'bool' },
  shedStatus: { flag: 'shed-status', env: 'CLIPPER_SHED_STATUS', kind: 'shed' },
};

/**
 * Every flag `clipper-ts serve` takes, without the leading `--` (the deploy/ manifests are checked against it):
 * `config`, each setting's flag, and `no-bundled`.
 */
export function serveFlags(): string[] {
  return ['config', ...Object.values(spec).map((s) => s.flag), 'no-bundled'];
}

/** Every environment variable `clipper-ts serve` reads (`CLIPPER_CONFIG` and one per setting). */
export function serveEnvironment(): string[] {
  return ['CLIPPER_CONFIG', ...Object.values(spec).map((s) => s.env)];
}
const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'];

function convert(key: string, kind: Kind, raw: unknown, source: string, min = 0): unknown {
  const where = `${key} (from ${source})`;
  if (kind === 'string') {
    if (typeof raw !== 'string' || raw.length === 0) throw new InvalidOptionError(`${where} must be a non-empty string; got ${JSON.stringify(raw)}`);
    return raw;
  }
  if (kind === 'policy') {
    if (raw !== 'static' && raw !== 'exp3' && raw !== 'exp4') throw new InvalidOptionError(`${where} must be one of static, exp3, exp4; got ${JSON.stringify(raw)}`);
    return raw;
  }
  if (kind === 'shed') {
    if (raw !== 429 && raw !== 503 && raw !== '429' && raw !== '503') throw new InvalidOptionError(`${where} must be 429 or 503; got ${JSON.stringify(raw)}`);
    return Number(raw);
  }
  if (kind === 'level') {
    if (typeof raw !== 'string' || !levels.includes(raw)) throw new InvalidOptionError(`${where} must be one of ${levels.join(', ')}; got ${JSON.stringify(raw)}`);
    return raw;
  }
  if (kind === 'bool') {
    if (typeof raw === 'boolean') return raw;
    if (raw === 'true' || raw === '1') return true;
    if (raw === 'false' || raw === '0') return false;
    throw new InvalidOptionError(`${where} must be true or false; got ${JSON.stringify(raw)}`);
  }
  const n = typeof raw === 'number' ? raw : typeof raw === 'string' && /^\d+$/.test(raw) ? Number(raw) : Number.NaN;
  const max = kind === 'port' ? 65535 : Number.MAX_SAFE_INTEGER;
  if (!Number.isInteger(n) || n < min || n > max) throw new InvalidOptionError(`${where} must be an integer in [${min}, ${max}]; got ${JSON.stringify(raw)}`);
  return n;
}

const loopback = (host: string): boolean => host === 'localhost' || host === '::1' || host.startsWith('127.');

/**
 * Resolves the settings: defaults, then a JSON file (`--config`), then environment variables (`CLIPPER_*`),
 * then flags. Validated once; errors name the setting and where it came from.
 */
export function resolveServeSettings(given: readonly string[], env: NodeJS.ProcessEnv = process.env): Readonly<ServeSettings> {
  // `--no-bundled` is `--bundled false` (Node 20's parseArgs has no negative flags).
  const noBundled = given.includes('--no-bundled');
  const argv = given.filter((a) => a !== '--no-bundled');
  const options: Record<string, { type: 'string' | 'boolean' }> = { config: { type: 'string' } };
  for (const s of Object.values(spec)) options[s.flag] = { type: s.kind === 'bool' ? 'boolean' : 'string' };
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: [...argv], options, allowPositionals: false, strict: true });
  } catch (error) {
    throw new InvalidOptionError(`${(error as Error).message}; flags: --config FILE ${Object.values(spec).map((s) => `--${s.flag}`).join(' ')}`);
  }
  const values = parsed.values as Record<string, unknown>;
  const out: Record<string, unknown> = { ...serveDefaults };
  const configFile = values.config ?? env.CLIPPER_CONFIG;
  if (typeof configFile === 'string') {
    let file: unknown;
    try {
      file = JSON.parse(readFileSync(configFile, 'utf8'));
    } catch (error) {
      throw new InvalidOptionError(`config file ${configFile} could not be read as JSON: ${(error as Error).message}`);
    }
    if (typeof file !== 'object' || file === null || Array.isArray(file)) throw new InvalidOptionError(`config file ${configFile} must hold a JSON object`);
    for (const [key, raw] of Object.entries(file)) {
      const s = spec[key as keyof ServeSettings];
      if (s === undefined) throw new InvalidOptionError(`config file ${configFile}: ${key} is not a setting; settings: ${Object.keys(spec).join(', ')}`);
      out[key] = convert(key, s.kind, raw, configFile, s.min);
    }
  }
  for (const [key, s] of Object.entries(spec)) {
    const fromEnv = env[s.env];
    if (fromEnv !== undefined && fromEnv !== '') out[key] = convert(key, s.kind, fromEnv, `$${s.env}`, s.min);
    const fromFlag = values[s.flag];
    if (fromFlag !== undefined) out[key] = convert(key, s.kind, fromFlag, `--${s.flag}`, s.min);
  }
  if (noBundled) out.bundled = false;
  const settings = out as unknown as ServeSettings;
  const stateGiven = values.state !== undefined || (env.CLIPPER_STATE ?? '') !== '' || out.state !== serveDefaults.state;
  if (settings.nats !== undefined && stateGiven && settings.state !== 'off') {
    throw new InvalidOptionError(`state (${settings.state}) is for a server without nats: with nats (${settings.nats}) the state lives in its clipper-config bucket`);
  }
  if (settings.state === 'off' || (settings.port === 0 && !stateGiven) || settings.nats !== undefined) settings.state = undefined;
  if (settings.remote && settings.nats === undefined) throw new InvalidOptionError('remote needs nats: model containers are reached over NATS (--nats URL)');
  for (const key of ['host', 'adminHost'] as const) {
    if (settings[key] !== 'localhost' && isIP(settings[key]) === 0) throw new InvalidOptionError(`${key} must be an IP address or localhost; got ${JSON.stringify(settings[key])}`);
  }
  if (!loopback(settings.adminHost) && settings.adminToken === undefined) {
    throw new InvalidOptionError(`adminHost ${settings.adminHost} is not loopback: set adminToken (--admin-token or CLIPPER_ADMIN_TOKEN) so the admin API is not open to the network`);
  }
  if (settings.otlpEndpoint !== undefined && !/^https?:\/\/[^/]/.test(settings.otlpEndpoint)) {
    throw new InvalidOptionError(`otlpEndpoint must be an http:// or https:// URL of an OTLP/HTTP collector (e.g. http://localhost:4318); got ${JSON.stringify(settings.otlpEndpoint)}`);
  }
  if (settings.port !== 0 && settings.port === settings.adminPort) throw new InvalidOptionError(`port and adminPort must differ; both are ${settings.port}`);
  const grpcGiven = values['grpc-port'] !== undefined || (env.CLIPPER_GRPC_PORT ?? '') !== '' || out.grpcPort !== serveDefaults.grpcPort;
  if (settings.port === 0 && !grpcGiven) settings.grpcPort = 'free';
  if (typeof settings.grpcPort === 'number' && settings.grpcPort !== 0 && (settings.grpcPort === settings.port || settings.grpcPort === settings.adminPort)) {
    throw new InvalidOptionError(`grpcPort must differ from port and adminPort; it is ${settings.grpcPort}`);
  }
  return Object.freeze(settings);
}
