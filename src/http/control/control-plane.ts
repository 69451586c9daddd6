/**
 * The control plane of one frontend: admin calls change the system and the stored state together, and stored
 * changes made elsewhere (another frontend on the same NATS) are applied here.
 *
 * An admin call runs in turn with the others (one at a time): it reads the stored state and its revision, first
 * catches up with it if someone else changed it, applies the call to the system (which validates it: a bad call
 * changes nothing), then writes the new state with compare-and-set on the revision read. A lost race is a
 * {@link StateConflictError} (409): the call's local effect is then undone by applying the winner's state.
 * The admin call that writes applies its own change, so it reads its own writes on the frontend that took it.
 */
import type { Clipper, DeployModelOptions, PolicySpec, RegisterAppOptions } from '../../index.js';
import { copyState, currentVersion, emptyState, findApp, findModel, mutations, type ControlState } from './control-state.js';
import type { StateStore } from './state-store.js';

/** What the admin API changes: the facade's own methods, or a control plane that records them. */
export interface AdminActions {
  registerApp(options: RegisterAppOptions & { policy?: PolicySpec }): Promise<void>;
  deployModel(options: DeployModelOptions): Promise<void>;
  linkModel(app: string, model: string): Promise<void>;
  unlinkModel(app: string, model: string): Promise<void>;
  setModelVersion(model: string, version: string): Promise<void>;
  setNumReplicas(model: string, count: number): Promise<void>;
  setPolicy(app: string, policy: PolicySpec): void | Promise<void>;
  removeModel(model: string): Promise<void>;
}

export interface ControlPlaneOptions {
  clipper: Clipper;
  store: StateStore;
  /** This frontend's NATS URL: a remote version in the state runs on the containers reached through it. */
  nats?: string;
  log?: (level: 'info' | 'warn' | 'error', message: string) => void;
}

export class ControlPlane implements AdminActions {
  readonly store: StateStore;
  readonly #clipper: Clipper;
  readonly #nats: string | undefined;
  readonly #log: NonNullable<ControlPlaneOptions['log']>;
  /** The state this frontend has applied, and the stored revision it came from. */
  #applied: ControlState = emptyState();
  #revision = 0;
  #tail: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(options: ControlPlaneOptions) {
    this.#clipper = options.clipper;
    this.store = options.store;
    this.#nats = options.nats;
    this.#log = options.log ?? (() => {});
  }

  /** The state applied here (a copy). */
  get state(): ControlState {
    return copyState(this.#applied);
  }

  /** The stored revision the applied state came from. */
  get revision(): number {
    return this.#revision;
  }

  /**
   * Starts: applies the stored state, or, when nothing is stored yet, stores `initial` (the bundled models, or
   * nothing) and applies that. With several frontends starting together, one stores its initial state and the
   * others apply it. Then follows the store's changes (when it is shared).
   */
  async start(initial: ControlState): Promise<void> {
    await this.#serial(async () => {
      let stored = await this.store.read();
      if (stored.state === undefined) {
        try {
          const revision = await this.store.write(initial, 0);
          stored = { state: initial, revision };
        } catch (error) {
          if ((error as { status?: number }).status !== 409) throw error;
          stored = await this.store.read();
        }
      }
      const failures = await this.#reconcile(stored.state ?? initial, stored.revision);
      // A server that cannot set itself up as its state says does not start half set up.
      if (failures.length > 0) throw failures[0];
    });
    this.store.watch?.((stored) => {
      if (stored.revision <= this.#revision) return;
      void this.#serial(async () => {
        if (stored.revision > this.#revision) await this.#reconcile(stored.state, stored.revision);
      }).catch((error: unknown) => this.#log('error', `control plane: applying revision ${stored.revision} failed: ${(error as Error).message}`));
    });
  }

  /** Runs `task` in turn with the admin calls and the stored changes (never beside one). */
  exclusive<T>(task: () => Promise<T>): Promise<T> {
    return this.#serial(task);
  }

  async close(): Promise<void> {
    this.#closed = true;
    await this.#tail.catch(() => {});
    await this.store.close();
  }

  registerApp(options: RegisterAppOptions & { policy?: PolicySpec }): Promise<void> {
    return this.#change(() => this.#clipper.registerApp(options), mutations.registerApp(options));
  }

  deployModel(options: DeployModelOptions): Promise<void> {
    return this.#change(() => this.#clipper.deployModel(this.#local(options)), mutations.deployModel(options));
  }

  linkModel(app: string, model: string): Promise<void> {
    return this.#change(() => this.#clipper.linkModel(app, model), mutations.linkModel(app, model));
  }

  unlinkModel(app: string, model: string): Promise<void> {
    return this.#change(() => this.#clipper.unlinkModel(app, model), mutations.unlinkModel(app, model));
  }

  setModelVersion(model: string, version: string): Promise<void> {
    return this.#change(() => this.#clipper.setModelVersion(model, version), mutations.setModelVersion(model, version));
  }

  setNumReplicas(model: string, count: number): Promise<void> {
    return this.#change(() => this.#clipper.setNumReplicas(model, count), mutations.setNumReplicas(model, count));
  }

  setPolicy(app: string, policy: PolicySpec): Promise<void> {
    return this.#change(async () => this.#clipper.setPolicy(app, policy), mutations.setPolicy(app, policy));
  }

  removeModel(model: string): Promise<void> {
    return this.#change(() => this.#clipper.removeModel(model), mutations.removeModel(model));
  }

  /** Runs `task` after every task before it (admin calls and stored changes apply one at a time). */
  #serial<T>(task: () => Promise<T>): Promise<T> {
    const run = this.#tail.then(task, task);
    this.#tail = run.catch(() => {});
    return run;
  }

  #change(apply: () => Promise<void>, mutate: (state: ControlState) => void): Promise<void> {
    return this.#serial(async () => {
      const stored = await this.store.read();
      if (stored.state !== undefined && stored.revision !== this.#revision) await this.#reconcile(stored.state, stored.revision);
      const base = stored.state ?? this.#applied;
      await apply();
      const next = copyState(base);
      mutate(next);
      try {
        this.#revision = await this.store.write(next, stored.revision);
        this.#applied = next;
      } catch (error) {
        // Lost the race: put the system back as the stored state says (the winner's change included), from
        // what it holds now (this call's change applied).
        this.#applied = next;
        const latest = await this.store.read().catch(() => undefined);
        await this.#reconcile(latest?.state ?? base, latest?.revision ?? this.#revision);
        throw error;
      }
    });
  }

  /** A version's options as this frontend deploys them: a remote version on this frontend's NATS. */
  #local(options: DeployModelOptions): DeployModelOptions {
    if (options.remote === undefined || this.#nats === undefined) return options;
    return { ...options, remote: { ...options.remote, nats: this.#nats } };
  }

  /**
   * Makes the system match `desired`: deploys missing versions, sets current versions and replica targets,
   * removes models no longer there, registers applications, sets policies and links. A step that fails (a
   * model file missing on this host) is logged and the rest still applied; the next change tries it again.
   * Returns the failures (at start they stop the server).
   */
  async #reconcile(desired: ControlState, revision: number): Promise<Error[]> {
    const failures: Error[] = [];
    if (this.#closed) return failures;
    const clipper = this.#clipper;
    const before = this.#applied;
    const step = async (what: string, run: () => Promise<void> | void): Promise<void> => {
      try {
        await run();
      } catch (error) {
        failures.push(error as Error);
        this.#log('warn', `control plane: ${what} failed: ${(error as Error).message}`);
      }
    };
    const deployed = new Map(clipper.getModels().map((m) => [m.name, m]));
    for (const model of desired.models) {
      const running = deployed.get(model.name);
      const have = new Set(running?.versions.map((v) => v.version) ?? []);
      const fresh = running === undefined;
      // Versions in deployment order, the current one last (a deployment becomes the current version).
      const order = [...model.versions.filter((v) => v.version !== model.current), currentVersion(model)];
      for (const version of order) {
        if (!have.has(version.version)) await step(`deploying ${model.name}@${version.version}`, () => clipper.deployModel(this.#local(version)));
      }
      const now = clipper.getModels().find((m) => m.name === model.name);
      if (now !== undefined && now.currentVersion !== model.current) await step(`setting ${model.name} to version ${model.current}`, () => clipper.setModelVersion(model.name, model.current));
      const was = findModel(before, model.name);
      const target = currentVersion(model).replicas;
      const previous = was === undefined || was.current !== model.current ? undefined : currentVersion(was).replicas;
      // A version in model containers has one replica per live container instead (container-replicas.ts).
      const remote = currentVersion(model).remote !== undefined;
      if (!fresh && !remote && target !== undefined && target !== previous) await step(`scaling ${model.name} to ${target}`, () => clipper.setNumReplicas(model.name, target));
    }
    // Only what the control plane itself applied is taken away: models and links a program set up on the system
    // before handing it to serve() stay.
    for (const name of deployed.keys()) {
      if (findModel(before, name) !== undefined && findModel(desired, name) === undefined) await step(`removing ${name}`, () => clipper.removeModel(name));
    }
    const registered = new Set(clipper.getApps().map((a) => a.name));
    for (const app of desired.apps) {
      const name = app.options.name;
      if (!registered.has(name)) {
        await step(`registering ${name}`, () => clipper.registerApp({ ...app.options, ...(app.policy === undefined ? {} : { policy: app.policy }) }));
      } else {
        const was = findApp(before, name);
        if (JSON.stringify(was?.policy ?? null) !== JSON.stringify(app.policy ?? null)) {
          await step(`setting ${name}'s policy`, () => clipper.setPolicy(name, app.policy ?? { kind: 'static' }));
        }
      }
      if (!clipper.getApps().some((a) => a.name === name)) continue;
      const linked = clipper.getLinkedModels(name);
      const wasLinked = findApp(before, name)?.links ?? [];
      for (const model of linked) if (wasLinked.includes(model) && !app.links.includes(model)) await step(`unlinking ${model} from ${name}`, () => clipper.unlinkModel(name, model));
      for (const model of app.links) if (!linked.includes(model)) await step(`linking ${model} to ${name}`, () => clipper.linkModel(name, model));
    }
    for (const name of registered) if (findApp(desired, name) === undefined) this.#log('warn', `control plane: application ${name} is not in the stored state; applications are never removed`);
    this.#applied = copyState(desired);
    this.#revision = revision;
    return failures;
  }
}
