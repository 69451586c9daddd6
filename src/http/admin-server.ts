import { existsSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { timingSafeEqual } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyServerOptions } from 'fastify';
import type { Clipper, InputType, PolicySnapshot, PolicySpec } from '../index.js';
import { InvalidOptionError, UnauthorizedError, UnknownModelError, UnknownVersionError } from '../index.js';
import { installErrorHandling } from './http-errors.js';
import { registerStatusPage } from './status/status-page.js';
import type { Registry } from 'prom-client';
import type { AdminActions } from './control/control-plane.js';
import type { ClusterSnapshot } from './control/cluster-view.js';

export interface AdminServerOptions {
  clipper: Clipper;
  /** When set, every request needs `Authorization: Bearer <token>`. */
  token: string | undefined;
  replicas: number;
  logger: FastifyServerOptions['logger'];
  /** The query server's metrics, for the status page's latency percentiles. */
  metrics?: Registry;
  /**
   * What the admin calls change through: the control plane (which records them in the state file or the
   * shared bucket; a lost compare-and-set race is a 409 STATE_CONFLICT). Default: the system itself.
   */
  actions?: AdminActions;
  /** Models added here run in model containers on this NATS: always with `byDefault`, else when add_model says `remote: true`. */
  remote?: { nats: string; byDefault: boolean };
  /** Over NATS: the cluster's frontends and containers, for the status page. */
  cluster?: () => ClusterSnapshot | undefined;
}

const inputTypes: Record<string, InputType> = { float32: 'float32', floats: 'float32', int32: 'int32', ints: 'int32' };

function sameToken(given: string, expected: string): boolean {
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Versions of a model present in the repository: sub-folders holding a model file. */
function repositoryVersions(repository: string, model: string): { version: string; file: string }[] {
  const dir = path.join(repository, model);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) return [];
  return readdirSync(dir)
    .filter((v) => statSync(path.join(dir, v)).isDirectory())
    .flatMap((version) => {
      const file = ['model.onnx', 'model.mjs', 'model.js'].map((f) => path.join(dir, version, f)).find((f) => existsSync(f));
      return file === undefined ? [] : [{ version, file }];
    })
    .sort((a, b) => a.version.localeCompare(b.version, 'en', { numeric: true }));
}

/**
 * The admin port: Clipper's management API under `/admin/` (add_app, add_model, add_model_links,
 * set_model_version, set_num_replicas, get_*) and the Open Inference Protocol's model repository extension
 * (`/v2/repository/...`), and the live status page at `/` (see status/status-page.ts). Bound to loopback by
 * default; with a token, every request must carry it (a browser signs in once and carries a session cookie).
 */
export function createAdminServer(options: AdminServerOptions): FastifyInstance {
  const { clipper } = options;
  const actions: AdminActions = options.actions ?? clipper;
  const app = Fastify({ logger: options.logger, bodyLimit: 1024 * 1024, requestIdHeader: 'x-request-id', ajv: { customOptions: { coerceTypes: false } } });
  installErrorHandling(app);
  const token = options.token;
  const status = registerStatusPage(app, {
    clipper,
    registry: options.metrics,
    token,
    isToken: (given) => token !== undefined && sameToken(given, token),
    ...(options.cluster === undefined ? {} : { cluster: options.cluster }),
  });
  if (token !== undefined) {
    app.addHook('onRequest', async (request, reply) => {
      const header = request.headers.authorization ?? '';
      const given = header.startsWith('Bearer ') ? header.slice(7) : '';
      // A browser signed in on the status page carries a session cookie instead of the header.
      if (!sameToken(given, token) && !status.signedIn(request) && !status.isPublic(request)) {
        const error = new UnauthorizedError('the admin API needs Authorization: Bearer <token>');
        reply.code(error.status).header('www-authenticate', 'Bearer').send(error.toJSON());
      }
    });
  }

  const remoteFor = (asked: boolean | undefined): string | undefined => {
    if (asked === true && options.remote === undefined) throw new InvalidOptionError('remote: true needs a server started with --nats URL (model containers are reached over NATS)');
    return (asked ?? options.remote?.byDefault === true) ? options.remote?.nats : undefined;
  };
  const remoteOption = (asked: boolean | undefined): { remote?: { nats: string } } => {
    const nats = remoteFor(asked);
    return nats === undefined ? {} : { remote: { nats } };
  };
  const name = { type: 'string', minLength: 1, maxLength: 64 } as const;
  const post = <B>(route: string, schema: object, handler: (body: B) => Promise<unknown> | unknown): void => {
    app.post<{ Body: B }>(`/admin/${route}`, { schema: { body: { type: 'object', ...schema } } }, async (request) => handler((request.body ?? {}) as B));
  };

  post<{ name: string; input_type: string; input_shape: number[]; default_output: number | string | null; latency_slo_micros?: number; latency_slo_ms?: number; cache_max_bytes?: number; confidence_threshold?: number }>(
    'add_app',
    {
      required: ['name', 'input_type', 'input_shape', 'default_output'],
      properties: {
        name,
        input_type: { type: 'string' },
        input_shape: { type: 'array', items: { type: 'integer' }, maxItems: 8 },
        default_output: {},
        latency_slo_micros: { type: 'number' },
        latency_slo_ms: { type: 'number' },
        cache_max_bytes: { type: 'integer' },
        confidence_threshold: { type: 'number' },
      },
      additionalProperties: false,
    },
    async (b) => {
      const inputType = inputTypes[b.input_type];
      if (inputType === undefined) throw new InvalidOptionError(`input_type must be one of ${Object.keys(inputTypes).join(', ')}; got ${JSON.stringify(b.input_type)}`);
      const slo = b.latency_slo_ms ?? (b.latency_slo_micros === undefined ? undefined : b.latency_slo_micros / 1000);
      await actions.registerApp({
        name: b.name,
        inputType,
        inputShape: b.input_shape,
        defaultOutput: b.default_output,
        ...(slo === undefined ? {} : { latencySloMs: slo }),
        ...(b.cache_max_bytes === undefined ? {} : { cacheMaxBytes: b.cache_max_bytes }),
        ...(b.confidence_threshold === undefined ? {} : { confidenceThreshold: b.confidence_threshold }),
      });
      return { success: true, app: clipper.getApp(b.name) };
    },
  );

  post<{ model_name: string; model_version: string; model_data_path: string; replicas?: number; batching?: Record<string, unknown>; output_kind?: 'classification' | 'regression'; isolation?: 'thread' | 'process'; remote?: boolean }>(
    'add_model',
    {
      required: ['model_name', 'model_version', 'model_data_path'],
      properties: {
        model_name: name,
        model_version: name,
        model_data_path: { type: 'string', maxLength: 1024 },
        replicas: { type: 'integer' },
        batching: { type: 'object' },
        output_kind: { type: 'string' },
        isolation: { type: 'string', enum: ['thread', 'process'] },
        remote: { type: 'boolean' },
      },
      additionalProperties: false,
    },
    async (b) => {
      await actions.deployModel({
        name: b.model_name,
        version: b.model_version,
        path: b.model_data_path,
        replicas: b.replicas ?? options.replicas,
        ...(b.batching === undefined ? {} : { batching: b.batching }),
        ...(b.output_kind === undefined ? {} : { outputKind: b.output_kind }),
        ...(b.isolation === undefined ? {} : { isolation: b.isolation }),
        ...remoteOption(b.remote),
      });
      return { success: true, model: clipper.getModel(b.model_name) };
    },
  );

  const links = { required: ['app_name', 'model_names'], properties: { app_name: name, model_names: { type: 'array', items: name, minItems: 1, maxItems: 64 } }, additionalProperties: false };
  post<{ app_name: string; model_names: string[] }>('add_model_links', links, async (b) => {
    for (const model of b.model_names) await actions.linkModel(b.app_name, model);
    return { success: true, linked_models: clipper.getLinkedModels(b.app_name) };
  });
  post<{ app_name: string; model_names: string[] }>('remove_model_links', links, async (b) => {
    for (const model of b.model_names) await actions.unlinkModel(b.app_name, model);
    return { success: true, linked_models: clipper.getLinkedModels(b.app_name) };
  });

  post<{ model_name: string; model_version: string }>(
    'set_model_version',
    { required: ['model_name', 'model_version'], properties: { model_name: name, model_version: name }, additionalProperties: false },
    async (b) => {
      await actions.setModelVersion(b.model_name, b.model_version);
      return { success: true, model_name: b.model_name, current_version: b.model_version };
    },
  );

  post<{ model_name: string; num_replicas: number }>(
    'set_num_replicas',
    { required: ['model_name', 'num_replicas'], properties: { model_name: name, num_replicas: { type: 'integer' } }, additionalProperties: false },
    async (b) => {
      await actions.setNumReplicas(b.model_name, b.num_replicas);
      return { success: true, model: clipper.getModel(b.model_name) };
    },
  );

  post<{ app_name: string; policy: PolicySpec }>(
    'set_policy',
    { required: ['app_name', 'policy'], properties: { app_name: name, policy: { type: 'object', required: ['kind'], properties: { kind: { type: 'string' } } } }, additionalProperties: false },
    async (b) => {
      await actions.setPolicy(b.app_name, b.policy);
      return { success: true, app_name: b.app_name, policy: clipper.getApp(b.app_name).policy, state: clipper.getPolicyState(b.app_name) };
    },
  );
  post<{ app_name: string; state: PolicySnapshot }>(
    'restore_policy_state',
    { required: ['app_name', 'state'], properties: { app_name: name, state: { type: 'object', required: ['kind'] } }, additionalProperties: false },
    (b) => {
      clipper.restorePolicyState(b.app_name, b.state);
      return { success: true, state: clipper.getPolicyState(b.app_name) };
    },
  );

  const getters: Record<string, (b: Record<string, string | boolean | undefined>) => unknown> = {
    get_policy_state: (b) => ({ app_name: b.app_name, policy: clipper.getApp(String(b.app_name)).policy, state: clipper.getPolicyState(String(b.app_name)) }),
    get_all_applications: (b) => (b.verbose === true ? clipper.getApps() : clipper.getApps().map((a) => a.name)),
    get_application: (b) => clipper.getApp(String(b.name)),
    get_linked_models: (b) => clipper.getLinkedModels(String(b.app_name)),
    get_all_models: (b) => (b.verbose === true ? clipper.getModels() : clipper.getModels().flatMap((m) => m.versions.map((v) => `${m.name}:${v.version}`))),
    // getModel and describeModel throw UNKNOWN_MODEL / UNKNOWN_VERSION (404) for names not deployed.
    get_model: (b) => (b.model_version === undefined ? clipper.getModel(String(b.model_name)) : { name: String(b.model_name), ...clipper.describeModel(String(b.model_name), String(b.model_version)) }),
  };
  for (const [route, get] of Object.entries(getters)) {
    app.post<{ Body: Record<string, string | boolean> }>(`/admin/${route}`, async (request) => get(request.body ?? {}));
    app.get<{ Querystring: Record<string, string> }>(`/admin/${route}`, async (request) =>
      get({ ...request.query, verbose: request.query.verbose === 'true' || request.query.verbose === '1' }),
    );
  }

  // ---- Open Inference Protocol: model repository extension ----
  app.post('/v2/repository/index', async () => {
    const repository = clipper.repository;
    const deployed = new Map(clipper.getModels().map((m) => [m.name, m]));
    return readdirSync(repository)
      .filter((m) => statSync(path.join(repository, m)).isDirectory())
      .flatMap((model) =>
        repositoryVersions(repository, model).map(({ version }) => {
          const loaded = deployed.get(model)?.versions.find((v) => v.version === version);
          return {
            name: model,
            version,
            state: loaded === undefined ? 'UNAVAILABLE' : loaded.replicas.some((r) => r.ready) ? 'READY' : 'LOADING',
            ...(loaded === undefined ? { reason: 'unloaded' } : {}),
          };
        }),
      );
  });
  app.post<{ Params: { model: string }; Body: { parameters?: { version?: string; replicas?: number } } | undefined }>(
    '/v2/repository/models/:model/load',
    { schema: { body: { type: ['object', 'null'], properties: { parameters: { type: 'object', properties: { version: { type: 'string' }, replicas: { type: 'integer' } } } } } } },
    async (request) => {
      const model = request.params.model;
      const versions = repositoryVersions(clipper.repository, model);
      if (versions.length === 0) throw new UnknownModelError(`the repository has no model ${JSON.stringify(model)} (no ${model}/<version>/model.onnx)`);
      const wanted = request.body?.parameters?.version;
      const chosen = wanted === undefined ? versions[versions.length - 1] : versions.find((v) => v.version === wanted);
      if (chosen === undefined) throw new UnknownVersionError(`the repository has no version ${JSON.stringify(wanted)} of ${model}; it has ${versions.map((v) => v.version).join(', ')}`);
      const already = clipper.getModels().find((m) => m.name === model)?.versions.some((v) => v.version === chosen.version);
      if (already === true) await actions.setModelVersion(model, chosen.version);
      else await actions.deployModel({ name: model, version: chosen.version, path: chosen.file, replicas: request.body?.parameters?.replicas ?? options.replicas });
      return { name: model, version: chosen.version, state: 'READY' };
    },
  );
  app.post<{ Params: { model: string } }>('/v2/repository/models/:model/unload', async (request) => {
    await actions.removeModel(request.params.model);
    return { name: request.params.model, state: 'UNAVAILABLE' };
  });

  return app;
}
