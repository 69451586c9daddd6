/**
 * `clipper-ts admin <command>`: everything the admin API does, from the command line (Clipper's
 * `clipper_admin`). Tables for people, `--json` for scripts, and exit codes that say what failed
 * ({@link exitCodes}).
 */
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { AdminCallError, adminCall, exitCodes, joinNegativeValues, type AdminTarget } from './admin-client.js';
import { formatTable } from './table.js';

/** A usage mistake: nothing was sent to the server. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** What a command needs: its positional arguments, its flags, and the server. */
interface Invocation {
  args: string[];
  flags: Record<string, string | boolean | undefined>;
  target: AdminTarget;
}

interface Command {
  usage: string;
  summary: string;
  /** Flags of this command beyond the common ones (all take a value unless listed in `booleans`). */
  flags?: string[];
  booleans?: string[];
  run(inv: Invocation): Promise<unknown>;
  /** The human form of the result; JSON when absent. */
  print?(result: unknown): string;
}

const commonFlags = `  --url URL      the admin API (default $CLIPPER_ADMIN_URL, else http://127.0.0.1:1338)
  --token TOKEN  Authorization: Bearer TOKEN (default $CLIPPER_ADMIN_TOKEN)
  --json         print the server's JSON answer instead of a table`;

function need(inv: Invocation, count: number, usage: string): string[] {
  if (inv.args.length < count) throw new UsageError(`expected ${count} argument${count === 1 ? '' : 's'}: ${usage}`);
  return inv.args;
}

function numberFlag(inv: Invocation, flag: string): number | undefined {
  const raw = inv.flags[flag];
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (typeof raw !== 'string' || raw.trim() === '' || !Number.isFinite(value)) throw new UsageError(`--${flag} must be a number; got ${JSON.stringify(raw)}`);
  return value;
}

function jsonArgument(text: string, what: string): unknown {
  const source = text === '-' ? readFileSync(0, 'utf8') : text.trim().startsWith('{') ? text : readFileSync(text, 'utf8');
  try {
    return JSON.parse(source);
  } catch (error) {
    throw new UsageError(`${what} must be JSON (inline, a file, or - for stdin): ${(error as Error).message}`);
  }
}

interface AppRow {
  name: string;
  inputType: string;
  inputShape: number[];
  latencySloMs: number;
  linkedModels: string[];
  policy: string;
  counters: { queries: number; defaults: number; refused: number };
  cache: { hits: number; misses: number };
}

interface ModelRow {
  name: string;
  currentVersion: string;
  linkedApps: string[];
  versions: { version: string; replicas: { name: string; ready: boolean; batchLimit: number; outstanding: number; restarts: number }[] }[];
}

function appsTable(apps: AppRow[]): string {
  return formatTable(
    ['APPLICATION', 'INPUT', 'SLO MS', 'POLICY', 'LINKED MODELS', 'QUERIES', 'DEFAULTS', 'REFUSED', 'CACHE HITS'],
    apps.map((a) => [
      a.name,
      `${a.inputType}[${a.inputShape.join(',')}]`,
      String(a.latencySloMs),
      a.policy,
      a.linkedModels.join(',') || '-',
      String(a.counters.queries),
      String(a.counters.defaults),
      String(a.counters.refused),
      String(a.cache.hits),
    ]),
  );
}

function modelsTable(models: ModelRow[]): string {
  return formatTable(
    ['MODEL', 'VERSION', 'CURRENT', 'REPLICAS READY', 'BATCH LIMITS', 'QUEUED', 'RESTARTS', 'LINKED APPS'],
    models.flatMap((m) =>
      m.versions.map((v) => [
        m.name,
        v.version,
        v.version === m.currentVersion ? 'yes' : '',
        `${v.replicas.filter((r) => r.ready).length}/${v.replicas.length}`,
        v.replicas.map((r) => r.batchLimit).join(',') || '-',
        String(v.replicas.reduce((n, r) => n + r.outstanding, 0)),
        String(v.replicas.reduce((n, r) => n + r.restarts, 0)),
        m.linkedApps.join(',') || '-',
      ]),
    ),
  );
}

const done = (what: (r: Record<string, unknown>) => string) => (result: unknown) => what(result as Record<string, unknown>);

/** The commands, by name. Each maps onto one admin route (or a few, for links). */
export const adminCommands: Record<string, Command> = {
  apps: {
    usage: 'apps',
    summary: 'list the applications with their policy, links and counters',
    run: (inv) => adminCall(inv.target, 'get_all_applications', { verbose: true }),
    print: (r) => appsTable(r as AppRow[]),
  },
  app: {
    usage: 'app NAME',
    summary: 'describe one application',
    run: (inv) => adminCall(inv.target, 'get_application', { name: need(inv, 1, 'app NAME')[0] }),
    print: (r) => appsTable([r as AppRow]),
  },
  models: {
    usage: 'models',
    summary: 'list the deployed models, their versions and replicas',
    run: (inv) => adminCall(inv.target, 'get_all_models', { verbose: true }),
    print: (r) => modelsTable(r as ModelRow[]),
  },
  model: {
    usage: 'model NAME',
    summary: 'describe one model: every version and replica',
    run: (inv) => adminCall(inv.target, 'get_model', { model_name: need(inv, 1, 'model NAME')[0] }),
    print: (r) => modelsTable([r as ModelRow]),
  },
  linked: {
    usage: 'linked APP',
    summary: "list an application's linked models",
    run: (inv) => adminCall(inv.target, 'get_linked_models', { app_name: need(inv, 1, 'linked APP')[0] }),
    print: (r) => (r as string[]).join('\n'),
  },
  'register-app': {
    usage: 'register-app NAME --input-shape 784 [--input-type float32] [--default-output -1] [--slo-ms 20] [--cache-max-bytes N] [--confidence-threshold X]',
    summary: 'register an application (Clipper register_application)',
    flags: ['input-shape', 'input-type', 'default-output', 'slo-ms', 'cache-max-bytes', 'confidence-threshold'],
    run: (inv) => {
      const [name] = need(inv, 1, 'register-app NAME --input-shape ...');
      const shape = inv.flags['input-shape'];
      if (typeof shape !== 'string') throw new UsageError('register-app needs --input-shape (e.g. 784, or 28,28)');
      const dims = shape.split(',').map((d) => Number(d.trim()));
      if (dims.some((d) => !Number.isInteger(d) || d < 1)) throw new UsageError(`--input-shape must be positive integers separated by commas; got ${JSON.stringify(shape)}`);
      const defaultOutput = inv.flags['default-output'];
      const slo = numberFlag(inv, 'slo-ms');
      const cache = numberFlag(inv, 'cache-max-bytes');
      const threshold = numberFlag(inv, 'confidence-threshold');
      return adminCall(inv.target, 'add_app', {
        name,
        input_type: inv.flags['input-type'] ?? 'float32',
        input_shape: dims,
        default_output: defaultOutput === undefined ? null : typeof defaultOutput === 'string' && Number.isFinite(Number(defaultOutput)) ? Number(defaultOutput) : defaultOutput,
        ...(slo === undefined ? {} : { latency_slo_ms: slo }),
        ...(cache === undefined ? {} : { cache_max_bytes: cache }),
        ...(threshold === undefined ? {} : { confidence_threshold: threshold }),
      });
    },
    print: done((r) => `registered application ${(r.app as { name: string }).name}`),
  },
  'deploy-model': {
    usage: 'deploy-model NAME VERSION PATH [--replicas N] [--output-kind classification|regression] [--isolation thread|process]',
    summary: "deploy a model version from a file in the server's model repository (Clipper deploy_model)",
    flags: ['replicas', 'output-kind', 'isolation'],
    run: (inv) => {
      const [name, version, file] = need(inv, 3, 'deploy-model NAME VERSION PATH');
      const replicas = numberFlag(inv, 'replicas');
      const kind = inv.flags['output-kind'];
      return adminCall(inv.target, 'add_model', {
        model_name: name,
        model_version: version,
        model_data_path: file,
        ...(replicas === undefined ? {} : { replicas }),
        ...(kind === undefined ? {} : { output_kind: kind }),
        ...(inv.flags.isolation === undefined ? {} : { isolation: inv.flags.isolation }),
      });
    },
    print: (r) => modelsTable([(r as { model: ModelRow }).model]),
  },
  link: {
    usage: 'link APP MODEL [MODEL...]',
    summary: 'link models to an application (Clipper link_model_to_app)',
    run: (inv) => {
      const [app, ...models] = need(inv, 2, 'link APP MODEL [MODEL...]');
      return adminCall(inv.target, 'add_model_links', { app_name: app, model_names: models });
    },
    print: done((r) => `linked models: ${(r.linked_models as string[]).join(', ')}`),
  },
  unlink: {
    usage: 'unlink APP MODEL [MODEL...]',
    summary: 'remove links; queries stop going to those models',
    run: (inv) => {
      const [app, ...models] = need(inv, 2, 'unlink APP MODEL [MODEL...]');
      return adminCall(inv.target, 'remove_model_links', { app_name: app, model_names: models });
    },
    print: done((r) => `linked models: ${(r.linked_models as string[]).join(', ') || '(none)'}`),
  },
  'set-version': {
    usage: 'set-version MODEL VERSION',
    summary: 'roll a model forward or back (Clipper set_model_version)',
    run: (inv) => {
      const [model, version] = need(inv, 2, 'set-version MODEL VERSION');
      return adminCall(inv.target, 'set_model_version', { model_name: model, model_version: version });
    },
    print: done((r) => `${String(r.model_name)} now serves version ${String(r.current_version)}`),
  },
  'set-replicas': {
    usage: 'set-replicas MODEL N',
    summary: "scale a model's current version (Clipper set_num_replicas)",
    run: (inv) => {
      const [model, count] = need(inv, 2, 'set-replicas MODEL N');
      const n = Number(count);
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`N must be a non-negative integer; got ${JSON.stringify(count)}`);
      return adminCall(inv.target, 'set_num_replicas', { model_name: model, num_replicas: n });
    },
    print: (r) => modelsTable([(r as { model: ModelRow }).model]),
  },
  'set-policy': {
    usage: 'set-policy APP KIND [--eta X] [--per-user]   (or set-policy APP \'{"kind":"exp4",...}\')',
    summary: "set an application's selection policy: static, exp3, exp4, ab (with --per-user, one per uid)",
    flags: ['eta'],
    booleans: ['per-user'],
    run: (inv) => {
      const [app, kind] = need(inv, 2, 'set-policy APP KIND');
      const eta = numberFlag(inv, 'eta');
      const policy = (kind as string).trim().startsWith('{')
        ? jsonArgument(kind as string, 'the policy')
        : { kind, ...(eta === undefined ? {} : { eta }), ...(inv.flags['per-user'] === true ? { perUser: true } : {}) };
      return adminCall(inv.target, 'set_policy', { app_name: app, policy });
    },
    print: done((r) => `application ${String(r.app_name)} uses policy ${String(r.policy)}`),
  },
  'get-policy-state': {
    usage: 'get-policy-state APP',
    summary: "print an application's learned policy state (JSON, to save and restore)",
    run: (inv) => adminCall(inv.target, 'get_policy_state', { app_name: need(inv, 1, 'get-policy-state APP')[0] }),
    print: (r) => JSON.stringify((r as { state: unknown }).state, null, 2),
  },
  'restore-policy-state': {
    usage: 'restore-policy-state APP FILE|-|JSON',
    summary: 'restore a saved policy state (the output of get-policy-state)',
    run: (inv) => {
      const [app, source] = need(inv, 2, 'restore-policy-state APP FILE');
      return adminCall(inv.target, 'restore_policy_state', { app_name: app, state: jsonArgument(source as string, 'the state') });
    },
    print: () => 'policy state restored',
  },
  repository: {
    usage: 'repository',
    summary: "list the model repository's versions and whether each is loaded (OIP repository index)",
    run: (inv) => adminCall(inv.target, '/v2/repository/index'),
    print: (r) =>
      formatTable(
        ['MODEL', 'VERSION', 'STATE'],
        (r as { name: string; version: string; state: string }[]).map((m) => [m.name, m.version, m.state]),
      ),
  },
  load: {
    usage: 'load MODEL [--version V] [--replicas N]',
    summary: 'load a model from the repository (its newest version unless --version), or switch to that version',
    flags: ['version', 'replicas'],
    run: (inv) => {
      const [model] = need(inv, 1, 'load MODEL');
      const replicas = numberFlag(inv, 'replicas');
      const version = inv.flags.version;
      const parameters = { ...(typeof version === 'string' ? { version } : {}), ...(replicas === undefined ? {} : { replicas }) };
      return adminCall(inv.target, `/v2/repository/models/${encodeURIComponent(model as string)}/load`, { parameters });
    },
    print: done((r) => `${String(r.name)} version ${String(r.version)} is ${String(r.state)}`),
  },
  unload: {
    usage: 'unload MODEL',
    summary: 'stop and remove every version of a model, unlinking it',
    run: (inv) => adminCall(inv.target, `/v2/repository/models/${encodeURIComponent(need(inv, 1, 'unload MODEL')[0] as string)}/unload`),
    print: done((r) => `${String(r.name)} is ${String(r.state)}`),
  },
};

export function adminHelp(): string {
  const width = Math.max(...Object.values(adminCommands).map((c) => c.usage.split('   ')[0]?.length ?? 0)) + 2;
  const lines = Object.values(adminCommands).map((c) => `  ${(c.usage.split('   ')[0] ?? '').padEnd(width)}${c.summary}`);
  return `clipper-ts admin COMMAND [ARGS] [--url URL] [--token TOKEN] [--json]

Commands:
${lines.join('\n')}

Common flags:
${commonFlags}

Exit codes: 0 done; 1 refused by the server (bad request); 2 usage error (nothing sent); 3 no server at the URL;
4 not found; 5 already exists or conflict; 6 unauthorized; 7 server error or overloaded.`;
}

/** Where the admin API is, from flags, then the environment, then the default. */
export function adminTarget(flags: Record<string, string | boolean | undefined>, env: NodeJS.ProcessEnv = process.env): AdminTarget {
  const url = flags.url ?? env.CLIPPER_ADMIN_URL ?? 'http://127.0.0.1:1338';
  const token = flags.token ?? env.CLIPPER_ADMIN_TOKEN;
  if (typeof url !== 'string' || !/^https?:\/\//.test(url)) throw new UsageError(`--url must be an http(s) URL; got ${JSON.stringify(url)}`);
  return { url, ...(typeof token === 'string' && token !== '' ? { token } : {}) };
}

/** Runs `clipper-ts admin ...`; returns the exit code. Output goes to `out`, errors to `err`. */
export async function adminMain(argv: string[], out: (line: string) => void = console.log, err: (line: string) => void = console.error): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    out(adminHelp());
    return name === undefined ? exitCodes.usage : exitCodes.ok;
  }
  const command = adminCommands[name];
  if (command === undefined) {
    err(`clipper-ts admin: unknown command ${JSON.stringify(name)}; one of: ${Object.keys(adminCommands).join(', ')}`);
    return exitCodes.usage;
  }
  try {
    const options: Record<string, { type: 'string' | 'boolean' }> = { url: { type: 'string' }, token: { type: 'string' }, json: { type: 'boolean' } };
    for (const f of command.flags ?? []) options[f] = { type: 'string' };
    for (const f of command.booleans ?? []) options[f] = { type: 'boolean' };
    let parsed;
    try {
      parsed = parseArgs({ args: joinNegativeValues(rest, new Set(command.flags ?? [])), options, allowPositionals: true, strict: true });
    } catch (error) {
      throw new UsageError(`${(error as Error).message}\nusage: clipper-ts admin ${command.usage}`);
    }
    const flags = parsed.values as Record<string, string | boolean | undefined>;
    const result = await command.run({ args: parsed.positionals, flags, target: adminTarget(flags) });
    out(flags.json === true || command.print === undefined ? JSON.stringify(result, null, 2) : command.print(result));
    return exitCodes.ok;
  } catch (error) {
    if (error instanceof UsageError) {
      err(`clipper-ts admin ${name}: ${error.message}`);
      return exitCodes.usage;
    }
    if (error instanceof AdminCallError) {
      err(`clipper-ts admin ${name}: ${error.message}${error.code === undefined ? '' : ` (${error.code})`}`);
      return error.exitCode;
    }
    throw error;
  }
}
