/**
 * The control plane's state as one JSON document: the applications (options, policy choice, links in order) and
 * the models (each version's deployment options, with its replica target, and the current version). It is what
 * the admin API changes, what a server without NATS keeps in its state file, and what the frontends on one NATS
 * share in the `clipper-config` bucket. Pure data and pure functions: nothing here runs a model.
 */
import { InvalidOptionError, type DeployModelOptions, type PolicySpec, type RegisterAppOptions } from '../../index.js';

export const STATE_FORMAT = 'clipper-ts/control-state';

export interface AppState {
  options: RegisterAppOptions;
  /** The policy chosen at registration or by set_policy; undefined: the default (static). */
  policy: PolicySpec | undefined;
  /** Linked models, in link order (the static policy answers with the first). */
  links: string[];
}

export interface ModelState {
  name: string;
  current: string;
  /**
   * Each deployed version's options, in deployment order, `replicas` being its target. A version run in model
   * containers keeps `remote`; every frontend applies it with its own NATS URL.
   */
  versions: DeployModelOptions[];
}

export interface ControlState {
  format: typeof STATE_FORMAT;
  version: 1;
  apps: AppState[];
  models: ModelState[];
}

export function emptyState(): ControlState {
  return { format: STATE_FORMAT, version: 1, apps: [], models: [] };
}

/** A deep copy (the state is plain JSON). */
export function copyState(state: ControlState): ControlState {
  return JSON.parse(JSON.stringify(state)) as ControlState;
}

export function encodeState(state: ControlState): string {
  return `${JSON.stringify(state, null, 2)}\n`;
}

/** Parses a state document; throws {@link InvalidOptionError} naming `source` and what was wrong. */
export function decodeState(text: string, source: string): ControlState {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (error) {
    throw new InvalidOptionError(`${source} is not JSON: ${(error as Error).message}`);
  }
  const d = doc as Partial<ControlState> | null;
  if (typeof d !== 'object' || d === null || d.format !== STATE_FORMAT || d.version !== 1) {
    throw new InvalidOptionError(`${source} is not a clipper-ts control-plane state (expected {"format": "${STATE_FORMAT}", "version": 1, ...})`);
  }
  if (!Array.isArray(d.apps) || !Array.isArray(d.models)) throw new InvalidOptionError(`${source}: apps and models must be arrays`);
  for (const app of d.apps) {
    if (typeof app?.options?.name !== 'string' || !Array.isArray(app.links)) throw new InvalidOptionError(`${source}: each app needs options.name and links; got ${JSON.stringify(app)}`);
  }
  for (const model of d.models) {
    if (typeof model?.name !== 'string' || typeof model.current !== 'string' || !Array.isArray(model.versions) || !model.versions.some((v) => v?.version === model.current)) {
      throw new InvalidOptionError(`${source}: each model needs name, versions and a current version among them; got ${JSON.stringify(model)}`);
    }
  }
  return d as ControlState;
}

export const findApp = (state: ControlState, name: string): AppState | undefined => state.apps.find((a) => a.options.name === name);
export const findModel = (state: ControlState, name: string): ModelState | undefined => state.models.find((m) => m.name === name);
export const currentVersion = (model: ModelState): DeployModelOptions => model.versions.find((v) => v.version === model.current) as DeployModelOptions;

/** The state changes the admin calls make, each applied to a copy once the system has accepted the call. */
export const mutations = {
  registerApp: (options: RegisterAppOptions & { policy?: PolicySpec }) => (s: ControlState) => {
    const { policy, ...app } = options;
    s.apps.push({ options: app, policy, links: [] });
  },
  deployModel: (options: DeployModelOptions) => (s: ControlState) => {
    const model = findModel(s, options.name);
    if (model === undefined) s.models.push({ name: options.name, current: options.version, versions: [options] });
    else {
      model.versions.push(options);
      model.current = options.version;
    }
  },
  linkModel: (app: string, model: string) => (s: ControlState) => {
    const a = findApp(s, app);
    if (a !== undefined && !a.links.includes(model)) a.links.push(model);
  },
  unlinkModel: (app: string, model: string) => (s: ControlState) => {
    const a = findApp(s, app);
    if (a !== undefined) a.links = a.links.filter((m) => m !== model);
  },
  setModelVersion: (model: string, version: string) => (s: ControlState) => {
    const m = findModel(s, model);
    if (m !== undefined) m.current = version;
  },
  setNumReplicas: (model: string, count: number) => (s: ControlState) => {
    const m = findModel(s, model);
    if (m !== undefined) currentVersion(m).replicas = count;
  },
  setPolicy: (app: string, policy: PolicySpec) => (s: ControlState) => {
    const a = findApp(s, app);
    if (a !== undefined) a.policy = policy;
  },
  removeModel: (model: string) => (s: ControlState) => {
    s.models = s.models.filter((m) => m.name !== model);
    for (const a of s.apps) a.links = a.links.filter((m) => m !== model);
  },
};
