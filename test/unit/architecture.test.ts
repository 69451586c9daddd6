/**
 * The architecture, enforced. Every .ts file's imports are read and checked against these rules; the README's
 * map of the folders ("How it works") says the same thing in prose.
 *
 * 1. The edges use clipper-ts as any other program would. The HTTP adapter (src/http), the gRPC adapter
 *    (src/grpc), the load harness (src/load) and the admin command line (src/admin-cli) import only the public API (src/index.ts, src/api.ts, src/errors.ts), files of their own
 *    folder, and packages (node built-ins, npm); src/http/serve.ts also starts the gRPC server (its entry point only).
 *    The wire folder (src/wire: tensor bytes both binary protocols carry) is shared by the edges and keeps
 *    their rule itself.
 * 2. The pure folders decide; they run nothing. src/kernel, src/batching, src/selection and src/routing
 *    import no threads (worker_threads, piscina), no model runtime (onnxruntime-node), no RPC (comlink), and
 *    call no timers (setTimeout, setInterval, setImmediate, node:timers): time comes from an injected Clock.
 *    The one place real timers live is src/kernel/clock.ts (the system clock). Nor do they import the actors,
 *    the facade or the edges (actors/, src/clipper.ts, src/index.ts, src/http, src/load).
 * 3. The worker entry (actors/worker) runs on another thread with nothing of the main thread's: it imports
 *    only a model runtime (onnxruntime-node; JS models are loaded by path at run time), the transport it
 *    answers on (piscina, comlink), node built-ins, and its own folder (the wire protocol).
 * 4. Benchmarks, examples and feature tests reach the system through the facade: never src/clipper.ts, never
 *    actors/ (they may use the edges, src/http and src/load, and the data in src/data).
 * 5. No import cycles (type-only imports count: a cycle of types is still two files that cannot be read
 *    apart).
 * 6. The cluster folder (src/cluster: model containers, their wire and discovery over NATS) is a library
 *    under the replicas: it imports the model host and wire of actors/worker, config and paths, never the
 *    facade, the edges or the actors above the worker (a container runs a model, not a replica).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { projectRoot } from '../../src/paths.js';

/** The public API: what src/http and src/load may import from outside their own folder. */
const PUBLIC_API = ['src/index.ts', 'src/api.ts', 'src/errors.ts'];
const EDGES = ['src/http/', 'src/load/', 'src/admin-cli/', 'src/grpc/', 'src/wire/'];
/** What every edge may import besides the public API and its own folder. */
const SHARED_BY_EDGES = 'src/wire/';
/** An edge's entry point, which another edge may start (src/http/serve.ts starts the gRPC server beside the HTTP ones). */
const EDGE_ENTRIES = ['src/grpc/grpc-server.ts'];
const PURE = ['src/kernel/', 'src/batching/', 'src/selection/', 'src/routing/'];
/** Where real timers are the point. */
const TIMER_HOMES = ['src/kernel/clock.ts'];
const RUNNING_PACKAGES = ['piscina', 'onnxruntime-node', 'comlink', 'worker_threads', 'timers'];
const PURE_MUST_NOT_REACH = ['actors/', 'src/clipper.ts', 'src/index.ts', 'src/http/', 'src/load/'];
const WORKER = 'actors/worker/';
const WORKER_PACKAGES = ['onnxruntime-node', 'piscina', 'comlink'];
const FACADE_USERS = ['bench/', 'examples/', 'test/feature/'];
const CLUSTER = 'src/cluster/';
const CLUSTER_MUST_NOT_REACH = ['src/clipper.ts', 'src/index.ts', 'src/http/', 'src/load/', 'src/admin-cli/', 'actors/router.ts', 'actors/replica.ts', 'actors/replica-set.ts', 'actors/feedback.ts'];
const FACADE_USERS_MUST_NOT_REACH = ['src/clipper.ts', 'actors/'];

/**
 * Imports that break a rule today, each with why it stands and who removes it. Keep this list short: an entry
 * is a debt, not a permission.
 */
const KNOWN_EXCEPTIONS: { from: string; to: string; why: string }[] = [

  {
    from: 'actors/worker/model-host.ts',
    to: 'src/kernel/random.ts',
    why: "the same fault dice, in the model host shared by child-process workers and containers; moves with it",
  },
];

const FOLDERS = ['src', 'actors', 'bench', 'examples', 'models', 'test'];

interface Import {
  /** As written: `../errors.js`, `node:fs`, `piscina`. */
  specifier: string;
  /** The project file it names (relative to the root, `.ts`), or undefined for a package. */
  target: string | undefined;
}

interface SourceFile {
  file: string;
  imports: Import[];
  /** The code without comments, for the timer check. */
  code: string;
}

function walk(dir: string): string[] {
  const full = path.join(projectRoot, dir);
  return readdirSync(full).flatMap((name) => {
    const rel = `${dir}/${name}`;
    if (name === 'node_modules' || name === 'dist' || name === 'fixtures') return [];
    if (statSync(path.join(projectRoot, rel)).isDirectory()) return walk(rel);
    return name.endsWith('.ts') && !name.endsWith('.d.ts') ? [rel] : [];
  });
}

function stripComments(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

/** Static imports and re-exports (`import ... from`, `import '...'`, `export ... from`) and `import('...')`. */
function importsOf(file: string, code: string): Import[] {
  const specifiers = [
    ...[...code.matchAll(/^\s*(?:import|export)\s+(?:[^'";]*?\s+from\s+)?['"]([^'"]+)['"]/gm)].map((m) => m[1] as string),
    ...[...code.matchAll(/\bimport\(\s*['"]([^'"]+)['"]\s*\)/g)].map((m) => m[1] as string),
  ];
  return specifiers.map((specifier) => {
    if (!specifier.startsWith('.')) return { specifier, target: undefined };
    const resolved = path.posix.normalize(path.posix.join(path.posix.dirname(file), specifier)).replace(/\.js$/, '.ts');
    return { specifier, target: resolved };
  });
}

function readSources(): Map<string, SourceFile> {
  const files = FOLDERS.flatMap((dir) => walk(dir));
  return new Map(
    files.map((file) => {
      const code = stripComments(readFileSync(path.join(projectRoot, file), 'utf8'));
      return [file, { file, imports: importsOf(file, code), code }];
    }),
  );
}

/** The package an import names (`node:fs` -> `fs`, `comlink/dist/x.mjs` -> `comlink`, `@a/b/c` -> `@a/b`). */
function packageOf(specifier: string): string {
  const bare = specifier.replace(/^node:/, '');
  const parts = bare.split('/');
  return bare.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string);
}

const NODE_BUILTINS = new Set(['fs', 'path', 'url', 'os', 'crypto', 'util', 'perf_hooks', 'worker_threads', 'child_process', 'module', 'events', 'stream', 'http', 'net', 'timers', 'assert', 'buffer', 'readline', 'process', 'zlib']);

const under = (file: string, prefixes: readonly string[]): boolean => prefixes.some((p) => file === p || file.startsWith(p));
const excused = (from: string, to: string): boolean => KNOWN_EXCEPTIONS.some((e) => e.from === from && e.to === to);

/** Every broken rule, as `file: what it does wrong`. */
function violations(sources: Map<string, SourceFile>): string[] {
  const found: string[] = [];
  for (const { file, imports, code } of sources.values()) {
    for (const { specifier, target } of imports) {
      if (target !== undefined && excused(file, target)) continue;
      if (under(file, EDGES)) {
        const ownFolder = EDGES.find((edge) => file.startsWith(edge)) as string;
        if (target !== undefined && !target.startsWith(ownFolder) && !target.startsWith(SHARED_BY_EDGES) && !PUBLIC_API.includes(target) && !EDGE_ENTRIES.includes(target)) {
          found.push(`rule 1: ${file} imports ${target}; the edges import only the public API (${PUBLIC_API.join(', ')}) and their own folder`);
        }
      }
      if (under(file, PURE)) {
        if (target === undefined && RUNNING_PACKAGES.includes(packageOf(specifier))) {
          found.push(`rule 2: ${file} imports ${specifier}; pure folders run no threads, runtimes, RPC or timers`);
        }
        if (target !== undefined && under(target, PURE_MUST_NOT_REACH)) {
          found.push(`rule 2: ${file} imports ${target}; pure folders never import actors, the facade or the edges`);
        }
      }
      if (under(file, [WORKER])) {
        const pkg = packageOf(specifier);
        const allowed = target === undefined ? NODE_BUILTINS.has(pkg) || WORKER_PACKAGES.includes(pkg) : target.startsWith(WORKER);
        if (!allowed) found.push(`rule 3: ${file} imports ${target ?? specifier}; the worker entry imports only model runtimes, its transport and the wire protocol`);
      }
      if (under(file, [CLUSTER]) && target !== undefined && under(target, CLUSTER_MUST_NOT_REACH)) {
        found.push(`rule 6: ${file} imports ${target}; src/cluster sits under the replicas: worker, config and paths only`);
      }
      if (under(file, FACADE_USERS) && target !== undefined && under(target, FACADE_USERS_MUST_NOT_REACH)) {
        found.push(`rule 4: ${file} imports ${target}; benchmarks, examples and feature tests use the facade (src/index.ts)`);
      }
    }
    if (under(file, PURE) && !TIMER_HOMES.includes(file)) {
      const timer = /(?<![\w$.])set(?:Timeout|Interval|Immediate)\s*\(|\bglobalThis\.set(?:Timeout|Interval|Immediate)\b/.exec(code);
      if (timer !== null) found.push(`rule 2: ${file} calls ${timer[0].replace(/\s*\($/, '')}; pure folders take time from an injected Clock`);
    }
  }
  return found;
}

/** Every import cycle among project files, each once, as `a -> b -> a`. */
function cycles(sources: Map<string, SourceFile>): string[] {
  const found = new Set<string>();
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (file: string): void => {
    state.set(file, 'open');
    stack.push(file);
    for (const { target } of sources.get(file)?.imports ?? []) {
      if (target === undefined || !sources.has(target)) continue;
      if (state.get(target) === 'open') {
        const loop = stack.slice(stack.indexOf(target));
        // One spelling per cycle: rotated to start at its smallest file.
        const start = loop.indexOf([...loop].sort()[0] as string);
        const canonical = [...loop.slice(start), ...loop.slice(0, start)];
        found.add([...canonical, canonical[0]].join(' -> '));
      } else if (state.get(target) === undefined) visit(target);
    }
    stack.pop();
    state.set(file, 'done');
  };
  for (const file of sources.keys()) if (!state.has(file)) visit(file);
  return [...found];
}

const sources = readSources();

test('the import walk sees the whole project', (t) => {
  // Guards the rules below against passing because the walk found nothing.
  for (const file of ['src/index.ts', 'src/http/query-server.ts', 'src/load/load-runner.ts', 'src/kernel/clock.ts', 'actors/router.ts', 'actors/worker/protocol.ts']) {
    t.true(sources.has(file), file);
  }
  const queryServer = sources.get('src/http/query-server.ts')?.imports.map((i) => i.target ?? i.specifier) ?? [];
  t.true(queryServer.includes('src/index.ts'), queryServer.join(', '));
  t.true(queryServer.includes('fastify'));
});

test('every file keeps its folder\'s import rule (rules 1-4 and 6, at the top of this file)', (t) => {
  const broken = violations(sources);
  t.deepEqual(broken, [], `\n${broken.join('\n')}`);
});

test('no import cycles (rule 5)', (t) => {
  const found = cycles(sources);
  t.deepEqual(found, [], `\n${found.join('\n')}`);
});

test('the rules catch what they describe (checked on made-up files)', (t) => {
  const made = (files: Record<string, string>): Map<string, SourceFile> =>
    new Map(Object.entries(files).map(([file, text]) => [file, { file, imports: importsOf(file, stripComments(text)), code: stripComments(text) }]));
  const cases: [files: Record<string, string>, rule: RegExp | undefined][] = [
    [{ 'src/http/x.ts': "import { Clipper } from '../clipper.js';" }, /^rule 1: src\/http\/x.ts imports src\/clipper.ts/],
    [{ 'src/http/x.ts': "import type { ReplicaSet } from '../../actors/replica-set.js';" }, /^rule 1/],
    [{ 'src/grpc/x.ts': "import { ReplicaSet } from '../../actors/replica-set.js';" }, /^rule 1: src\/grpc\/x.ts/],
    [{ 'src/http/x.ts': "import { startGrpcServer } from '../grpc/grpc-server.js';" }, undefined],
    [{ 'src/http/x.ts': "import { requestRows } from '../grpc/tensor-codec.js';" }, /^rule 1/],
    [{ 'src/http/x.ts': "import { rawValues } from '../wire/raw-tensor.js';" }, undefined],
    [{ 'src/wire/x.ts': "import { Clipper } from '../clipper.js';" }, /^rule 1: src\/wire\/x.ts/],
    [{ 'src/load/x.ts': "import {\n  a,\n  b,\n} from '../kernel/random.js';" }, /^rule 1: src\/load\/x.ts imports src\/kernel\/random.ts/],
    [{ 'src/load/x.ts': "import { Clipper } from '../index.js';\nimport { y } from './y.js';\nimport { Pool } from 'undici';" }, undefined],
    [{ 'src/routing/x.ts': "import { Piscina } from 'piscina';" }, /^rule 2: .* imports piscina/],
    [{ 'src/batching/x.ts': "import { Worker } from 'node:worker_threads';" }, /^rule 2/],
    [{ 'src/selection/x.ts': 'export function f(): void {\n  setTimeout(() => {}, 5);\n}' }, /^rule 2: src\/selection\/x.ts calls setTimeout/],
    [{ 'src/selection/x.ts': '// setTimeout(f, 1) in a comment is fine\nexport const g = (clock: Clock) => clock.setTimeout(f, 1);' }, undefined],
    [{ 'src/kernel/x.ts': "import { Router } from '../../actors/router.js';" }, /^rule 2: .* pure folders never import actors/],
    [{ 'actors/worker/x.ts': "import * as ort from 'onnxruntime-node';\nimport type { ModelSpec } from './protocol.js';\nimport { threadId } from 'node:worker_threads';" }, undefined],
    [{ 'actors/worker/x.ts': "import { BatchQueue } from '../../src/batching/batch-queue.js';" }, /^rule 3/],
    [{ 'actors/worker/x.ts': "import { LRUCache } from 'lru-cache';" }, /^rule 3/],
    [{ 'bench/x.ts': "import { Clipper } from '../src/clipper.js';" }, /^rule 4/],
    [{ 'test/feature/x.ts': "const { Replica } = await import('../../actors/replica.js');" }, /^rule 4/],
    [{ 'src/cluster/x.ts': "import { Clipper } from '../clipper.js';" }, /^rule 6/],
    [{ 'src/cluster/x.ts': "import { ModelHost } from '../../actors/worker/model-host.js';\nimport { connect } from '@nats-io/transport-node';" }, undefined],
  ];
  for (const [files, rule] of cases) {
    const broken = violations(made(files));
    if (rule === undefined) t.deepEqual(broken, [], JSON.stringify(files));
    else {
      t.is(broken.length, 1, `${JSON.stringify(files)}: ${broken.join('; ')}`);
      t.regex(broken[0] ?? '', rule);
    }
  }
  const loop = made({ 'src/a.ts': "import { b } from './b.js';", 'src/b.ts': "import type { C } from './c.js';", 'src/c.ts': "export * from './a.js';" });
  t.deepEqual(cycles(loop), ['src/a.ts -> src/b.ts -> src/c.ts -> src/a.ts']);
});

test('each known exception still names a real import (so a paid-off debt is noticed)', (t) => {
  for (const { from, to } of KNOWN_EXCEPTIONS) {
    const still = sources.get(from)?.imports.some((i) => i.target === to) ?? false;
    if (!still) t.log(`known exception ${from} -> ${to} is no longer needed: remove it from KNOWN_EXCEPTIONS`);
  }
  t.pass();
});
