import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { projectRoot } from '../../src/paths.js';

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

function exited(child: ReturnType<typeof spawn>): Promise<number | null> {
  return child.exitCode !== null ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('exit', (code) => resolve(code)));
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

test('SIGTERM drains in-flight queries and exits 0; queries arriving meanwhile get 503', async (t) => {
  const server = await start(['--slo-ms', '5000']);
  t.teardown(() => {
    server.child.kill('SIGKILL');
  });
  await untilReady(server.queryUrl);
  const body = readFileSync(path.join(projectRoot, 'examples', 'digit.json'), 'utf8');
  const send = () =>
    fetch(`${server.queryUrl}/digits/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body }).then(
      async (r) => ({ status: r.status, json: (await r.json()) as { output?: number } }),
      (error: Error) => ({ status: 0, json: { error: error.message } as { output?: number } }),
    );
  // Signal as soon as the first of a burst is answered, so the rest are in the server when it arrives.
  let answeredBeforeSignal = 0;
  let signalled = false;
  const inFlight = Array.from({ length: 200 }, () =>
    send().then((r) => {
      if (!signalled) {
        answeredBeforeSignal++;
        signalled = true;
        server.child.kill('SIGTERM');
      }
      return r;
    }),
  );
  const results = await Promise.all(inFlight);
  t.is(await exited(server.child), 0, server.output());
  t.regex(server.output(), /SIGTERM, draining/);
  for (const r of results) {
    // Answered (drained) or refused with 503 while closing; a connection refused after exit counts as refused too.
    t.true(r.status === 200 || r.status === 503 || r.status === 0, `status ${r.status}`);
    if (r.status === 200) t.is(r.json.output, 4);
  }
  const answered = results.filter((r) => r.status === 200).length;
  t.true(answered > answeredBeforeSignal, `queries in flight at SIGTERM were answered: ${JSON.stringify(results.map((r) => r.status))}`);
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
