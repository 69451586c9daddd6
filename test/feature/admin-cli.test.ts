import { execFile, spawn } from 'node:child_process';
import { copyFileSync, cpSync, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { digit, loadMnist } from '../../src/index.js';
import { projectRoot } from '../../src/paths.js';

// `clipper-ts admin` and `clipper-ts deploy` as an operator runs them: real processes against a real server.

const cli = path.join(projectRoot, 'dist', 'src', 'cli.js');

interface Result {
  code: number;
  stdout: string;
  stderr: string;
}

function run(args: string[], env: NodeJS.ProcessEnv = {}): Promise<Result> {
  return new Promise((resolve) => {
    execFile(process.execPath, [cli, ...args], { cwd: projectRoot, env: { ...process.env, ...env } }, (error, stdout, stderr) => {
      resolve({ code: error === null ? 0 : typeof error.code === 'number' ? error.code : -1, stdout, stderr });
    });
  });
}

interface Server {
  queryUrl: string;
  adminUrl: string;
  repository: string;
  stop: () => void;
}

async function startServer(t: { teardown(fn: () => void): void }, extra: string[] = []): Promise<Server> {
  const repository = mkdtempSync(path.join(tmpdir(), 'clipper-admin-'));
  cpSync(path.join(projectRoot, 'models', 'mnist-linear'), path.join(repository, 'mnist-linear'), { recursive: true });
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--admin-port', '0', '--log-level', 'warn', '--no-bundled', '--models', repository, '--replicas', '1', ...extra], {
    cwd: projectRoot,
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const stop = (): void => {
    child.kill('SIGKILL');
    rmSync(repository, { recursive: true, force: true });
  };
  t.teardown(stop);
  const until = Date.now() + 60_000;
  let match: RegExpExecArray | null = null;
  while ((match = /queries on (http:\/\/\S+) .*admin on (http:\/\/\S+)/.exec(out)) === null) {
    if (Date.now() > until || child.exitCode !== null) throw new Error(`server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return { queryUrl: match[1] as string, adminUrl: match[2] as string, repository, stop };
}

test('admin commands drive a running server: register, deploy, link, describe, scale, policy state, unlink', async (t) => {
  const server = await startServer(t);
  const admin = (...args: string[]): Promise<Result> => run(['admin', ...args, '--url', server.adminUrl]);

  const registered = await admin('register-app', 'digits', '--input-shape', '784', '--default-output', '-1', '--slo-ms', '500');
  t.is(registered.code, 0, registered.stderr);
  t.regex(registered.stdout, /registered application digits/);

  const deployed = await admin('deploy-model', 'mnist-linear', '1', 'mnist-linear/1/model.onnx', '--replicas', '1');
  t.is(deployed.code, 0, deployed.stderr);
  t.regex(deployed.stdout, /^MODEL\s+VERSION\s+CURRENT\s+REPLICAS READY/m);
  t.regex(deployed.stdout, /^mnist-linear\s+1\s+yes\s+1\/1/m);

  const linked = await admin('link', 'digits', 'mnist-linear');
  t.is(linked.code, 0, linked.stderr);
  t.is(linked.stdout.trim(), 'linked models: mnist-linear');

  const apps = await admin('apps', '--json');
  t.is(apps.code, 0, apps.stderr);
  const appList = JSON.parse(apps.stdout) as { name: string; linkedModels: string[]; latencySloMs: number }[];
  t.deepEqual(
    appList.map((a) => [a.name, a.linkedModels, a.latencySloMs]),
    [['digits', ['mnist-linear'], 500]],
  );

  const digits = loadMnist().test;
  const answer = await fetch(`${server.queryUrl}/digits/predict`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ input: Array.from(digit(digits, 0)) }),
  });
  t.is(answer.status, 200);
  const body = (await answer.json()) as { output: number; default: boolean };
  t.false(body.default);
  t.is(body.output, digits.labels[0]);

  const table = await admin('apps');
  t.regex(table.stdout, /^APPLICATION\s+INPUT\s+SLO MS\s+POLICY/m);
  t.regex(table.stdout, /^digits\s+float32\[784\]\s+500\s+static\s+mnist-linear\s+1\s+0\s+0/m);

  const scaled = await admin('set-replicas', 'mnist-linear', '2');
  t.is(scaled.code, 0, scaled.stderr);
  t.regex(scaled.stdout, /^mnist-linear\s+1\s+yes\s+2\/2/m);

  const policy = await admin('set-policy', 'digits', 'exp3', '--eta', '0.5');
  t.is(policy.code, 0, policy.stderr);
  t.regex(policy.stdout, /uses policy exp3/);
  const state = await admin('get-policy-state', 'digits');
  t.is(state.code, 0, state.stderr);
  const snapshot = JSON.parse(state.stdout) as { kind: string };
  t.is(snapshot.kind, 'exp3');
  const saved = path.join(server.repository, 'state.json');
  writeFileSync(saved, state.stdout);
  const restored = await admin('restore-policy-state', 'digits', saved);
  t.is(restored.code, 0, restored.stderr);
  t.is(restored.stdout.trim(), 'policy state restored');

  const unlinked = await admin('unlink', 'digits', 'mnist-linear');
  t.is(unlinked.code, 0, unlinked.stderr);
  t.is(unlinked.stdout.trim(), 'linked models: (none)');
  const links = await admin('linked', 'digits', '--json');
  t.deepEqual(JSON.parse(links.stdout), []);

  const repo = await admin('repository');
  t.regex(repo.stdout, /^mnist-linear\s+1\s+READY$/m);
  const unloaded = await admin('unload', 'mnist-linear');
  t.is(unloaded.code, 0, unloaded.stderr);
  t.regex((await admin('repository')).stdout, /^mnist-linear\s+1\s+UNAVAILABLE$/m);
});

test('admin exit codes say what failed: usage 2, unreachable 3, not found 4, exists 5, unauthorized 6, refused 1', async (t) => {
  const server = await startServer(t, ['--admin-token', 'sesame']);
  const withToken = (...args: string[]): Promise<Result> => run(['admin', ...args, '--url', server.adminUrl], { CLIPPER_ADMIN_TOKEN: 'sesame' });

  const unknown = await run(['admin', 'frobnicate']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown command "frobnicate"/);
  const missing = await run(['admin', 'set-version', 'only-one-arg', '--url', server.adminUrl]);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /expected 2 arguments/);

  const closed = await run(['admin', 'apps', '--url', 'http://127.0.0.1:1']);
  t.is(closed.code, 3);
  t.regex(closed.stderr, /no clipper-ts admin API answered at http:\/\/127\.0\.0\.1:1/);

  const noToken = await run(['admin', 'apps', '--url', server.adminUrl]);
  t.is(noToken.code, 6, noToken.stderr);
  t.regex(noToken.stderr, /UNAUTHORIZED/);

  const notFound = await withToken('model', 'no-such-model');
  t.is(notFound.code, 4, notFound.stderr);
  t.regex(notFound.stderr, /no model named "no-such-model".*\(UNKNOWN_MODEL\)/);

  t.is((await withToken('register-app', 'a', '--input-shape', '4')).code, 0);
  const exists = await withToken('register-app', 'a', '--input-shape', '4');
  t.is(exists.code, 5, exists.stderr);
  t.regex(exists.stderr, /already registered/);

  const refused = await withToken('set-policy', 'a', 'no-such-policy');
  t.is(refused.code, 1, refused.stderr);
});

test('deploy takes an ONNX file to an application answering queries, and the curl line it prints works', async (t) => {
  const server = await startServer(t);
  const source = path.join(mkdtempSync(path.join(tmpdir(), 'clipper-model-')), 'my-digits.onnx');
  copyFileSync(path.join(projectRoot, 'models', 'mnist-mlp', '1', 'model.onnx'), source);
  t.teardown(() => rmSync(path.dirname(source), { recursive: true, force: true }));
  const env = { CLIPPER_ADMIN_URL: server.adminUrl, CLIPPER_URL: server.queryUrl };

  const first = await run(['deploy', source, '--app', 'fresh', '--models', server.repository, '--slo-ms', '1000'], env);
  t.is(first.code, 0, first.stderr);
  t.regex(first.stdout, /deployed my-digits version 1 \(float32\[784\] -> classification\)/);
  t.regex(first.stdout, /registered and linked application fresh/);
  const config = JSON.parse(readFileSync(path.join(server.repository, 'my-digits', '1', 'config.json'), 'utf8')) as { input: unknown; output: unknown };
  t.deepEqual(config.input, { name: 'input', dtype: 'float32', shape: [784] });
  t.deepEqual(config.output, { name: 'probabilities', dtype: 'float32', shape: [10], kind: 'classification' });

  // The printed curl line, run as printed.
  const curl = first.stdout.split('\n').find((line) => line.startsWith('curl ')) ?? '';
  const data = /-d @(\S+)/.exec(curl)?.[1] ?? '';
  t.true(existsSync(data), curl);
  const answered = await new Promise<string>((resolve, reject) =>
    execFile('sh', ['-c', curl], (error, stdout) => (error === null ? resolve(stdout) : reject(error))),
  );
  const body = JSON.parse(answered) as { output: number; default: boolean };
  t.false(body.default, answered);
  t.true(Number.isInteger(body.output) && body.output >= 0 && body.output < 10, answered);

  // A second deploy of the same name is the next version, and the application keeps its registration.
  const second = await run(['deploy', source, '--app', 'fresh', '--models', server.repository, '--json'], env);
  t.is(second.code, 0, second.stderr);
  const summary = JSON.parse(second.stdout) as { version: string; registeredApplication: boolean };
  t.is(summary.version, '2');
  t.false(summary.registeredApplication);
  const models = JSON.parse((await run(['admin', 'model', 'my-digits', '--json'], env)).stdout) as { currentVersion: string; versions: { version: string }[] };
  t.is(models.currentVersion, '2');
  t.deepEqual(
    models.versions.map((v) => v.version),
    ['1', '2'],
  );

  const noApp = await run(['deploy', source, '--models', server.repository], env);
  t.is(noApp.code, 2);
  t.regex(noApp.stderr, /--app NAME is required/);
  const jsWithoutShape = path.join(path.dirname(source), 'm.mjs');
  writeFileSync(jsWithoutShape, 'export function predict(x, rows) { return new Float32Array(rows * 2); }\n');
  const js = await run(['deploy', jsWithoutShape, '--app', 'fresh', '--models', server.repository], env);
  t.is(js.code, 2);
  t.regex(js.stderr, /pass --input-shape/);
});
