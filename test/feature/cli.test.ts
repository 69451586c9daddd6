import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { projectRoot } from '../../src/paths.js';
import { fixtureModels } from '../helpers/fixtures.js';

// The `clipper-ts` command as users run it: a real process, real sockets, real signals.

const cli = path.join(projectRoot, 'dist', 'src', 'cli.js');
const run = promisify(execFile);

interface Started {
  child: ReturnType<typeof spawn>;
  queryUrl: string;
  adminUrl: string;
  output: () => string;
}

async function start(args: string[]): Promise<Started> {
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--admin-port', '0', '--log-level', 'warn', ...args], { cwd: projectRoot });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr.on('data', (d: Buffer) => (out += d.toString()));
  const until = Date.now() + 60_000;
  while (!/^ready|listening/m.test(out) || !out.includes('admin on')) {
    if (Date.now() > until || child.exitCode !== null) throw new Error(`server did not start: ${out}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const match = /queries on (http:\/\/\S+) .*admin on (http:\/\/\S+)/.exec(out);
  if (match === null) throw new Error(`no addresses in: ${out}`);
  return { child, queryUrl: match[1] as string, adminUrl: match[2] as string, output: () => out };
}

/** Waits for the bundled models: the ports open before they finish loading. */
async function untilReady(queryUrl: string): Promise<void> {
  const until = Date.now() + 60_000;
  while ((await fetch(`${queryUrl}/v2/health/ready`)).status !== 200) {
    if (Date.now() > until) throw new Error('never ready');
    await new Promise((r) => setTimeout(r, 100));
  }
}

/**
 * The exit code, once the process has exited and its output has been read to the end: 'exit' can come before
 * the last of stdout is read ('close' comes after), which once made the output look as if a line was missing.
 */
function exited(child: ReturnType<typeof spawn>): Promise<number | null> {
  return child.stdout?.readableEnded === true && child.stderr?.readableEnded === true && child.exitCode !== null
    ? Promise.resolve(child.exitCode)
    : new Promise((resolve) => child.once('close', (code) => resolve(code)));
}

test('the README curl examples run verbatim against `clipper-ts serve`', async (t) => {
  const server = await start(['--slo-ms', '2000']);
  t.teardown(() => {
    server.child.kill('SIGKILL');
  });
  await untilReady(server.queryUrl);
  const readme = readFileSync(path.join(projectRoot, 'README.md'), 'utf8');
  const block = /<!-- example: curl -->\n```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
  const commands = block.split('\n').filter((line) => line.startsWith('curl '));
  t.true(commands.length >= 5, `${commands.length} curl examples`);
  const query = new URL(server.queryUrl).host;
  const admin = new URL(server.adminUrl).host;
  const outputs: string[] = [];
  for (const command of commands) {
    const line = command.replaceAll('localhost:1337', query).replaceAll('localhost:1338', admin);
    const { stdout } = await run('bash', ['-c', `set -o pipefail; ${line} --fail-with-body`], { cwd: projectRoot });
    outputs.push(stdout);
  }
  t.deepEqual(JSON.parse(outputs[0] as string), { ready: true });
  const predicted = JSON.parse(outputs[1] as string) as { output: number; default: boolean };
  t.is(predicted.output, 4, 'examples/digit.json is a 4');
  t.false(predicted.default);
  const inferred = JSON.parse(outputs[2] as string) as { outputs: { data: number[]; shape: number[] }[] };
  t.deepEqual(inferred.outputs[0]?.shape, [1, 10]);
  t.true((JSON.parse(outputs[3] as string) as { applied: boolean }).applied);
  t.true((JSON.parse(outputs[4] as string) as string[]).includes('mnist-cnn:1'));
  t.regex(outputs[outputs.length - 1] as string, /^clipper_requests_total/m);
});

test('SIGTERM drains: every query the server took before the signal is answered by the model, later ones are refused, exit 0', async (t) => {
  // A slow JS model with one query per batch, so the queries are still queued and running when the signal comes.
  // No event-loop shedding: on a loaded machine it would refuse some before the signal, which is not what is tested.
  const server = await start(['--no-bundled', '--models', fixtureModels, '--log-level', 'info', '--max-event-loop-delay-ms', '0']);
  t.teardown(() => {
    server.child.kill('SIGKILL');
  });
  const admin = async (route: string, body: unknown) => {
    const r = await fetch(`${server.adminUrl}/admin/${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
    t.is(r.status, 200, `${route}: ${await r.text()}`);
  };
  await admin('add_app', { name: 'slow', input_type: 'floats', input_shape: [2], default_output: -1, latency_slo_ms: 30_000 });
  await admin('add_model', { model_name: 'slow', model_version: '1', model_data_path: 'slow/1/model.mjs', batching: { mode: 'none' } });
  await admin('add_model_links', { app_name: 'slow', model_names: ['slow'] });
  let signalledAt = Number.POSITIVE_INFINITY;
  const send = (i: number, id: string) =>
    fetch(`${server.queryUrl}/slow/predict`, { method: 'POST', headers: { 'content-type': 'application/json', 'x-request-id': id }, body: JSON.stringify({ input: [200, i] }) }).then(
      async (r) => ({ status: r.status, json: (await r.json()) as { output?: number; default?: boolean }, afterSignal: performance.now() > signalledAt }),
      (error: Error) => ({ status: 0, json: { error: error.message } as { output?: number; default?: boolean }, afterSignal: true }),
    );
  const count = 10;
  const inFlight = Array.from({ length: count }, (_, i) => send(i, `drain-${i}`));
  // The server logs each request under the client's x-request-id: signal once it has taken all of them.
  const took = (id: string) => server.output().includes(`"reqId":"${id}","req":`);
  const until = Date.now() + 30_000;
  while (!Array.from({ length: count }, (_, i) => took(`drain-${i}`)).every(Boolean)) {
    if (Date.now() > until) throw new Error(`the server did not log every request: ${server.output()}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  signalledAt = performance.now();
  server.child.kill('SIGTERM');
  while (!server.output().includes('SIGTERM, draining')) await new Promise((r) => setTimeout(r, 10));
  const late = await send(99, 'late');
  const results = await Promise.all(inFlight);
  t.is(await exited(server.child), 0, server.output());
  t.regex(server.output(), /SIGTERM, draining/);
  results.forEach((r, i) => {
    t.is(r.status, 200, `query ${i}: ${JSON.stringify(r.json)}`);
    t.is(r.json.output, i);
    t.false(r.json.default, `query ${i} was answered by the model`);
  });
  // Each batch takes 200 ms, so most were still queued or running at the signal: the drain answered them.
  const drained = results.filter((r) => r.afterSignal).length;
  t.true(drained >= 1, `${drained} of ${count} answered after the signal`);
  t.log(`${drained} of ${count} queries answered after SIGTERM`);
  // A query sent after the signal is refused: a 503 on an open connection, or no connection at all.
  t.true(late.status === 503 || late.status === 0, `a query after the signal got ${late.status}`);
});

test('bad settings stop the command with exit code 2 and a message naming the setting', async (t) => {
  const bad = await run(process.execPath, [cli, 'serve', '--port', 'x']).then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
  t.is(bad?.code, 2);
  t.regex(bad?.stderr ?? '', /port \(from --port\) must be an integer in \[0, 65535\]; got "x"/);
  const open = await run(process.execPath, [cli, 'serve', '--admin-host', '0.0.0.0']).then(
    () => undefined,
    (error: { code: number; stderr: string }) => error,
  );
  t.is(open?.code, 2);
  t.regex(open?.stderr ?? '', /set adminToken/);
  const help = await run(process.execPath, [cli, '--help']);
  t.regex(help.stdout, /--admin-token TOKEN/);
});
