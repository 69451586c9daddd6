/** `clipper-ts serve` as a real child process, for tests that restart or signal it. */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { projectRoot } from '../../src/paths.js';

export const cli = path.join(projectRoot, 'dist', 'src', 'cli.js');

export interface CliServer {
  child: ChildProcess;
  queryUrl: string;
  adminUrl: string;
  output: () => string;
}

/** Starts `clipper-ts serve --port 0 --admin-port 0 ...args` and resolves once it prints its addresses. */
export async function startCliServer(args: string[], options: { cwd?: string } = {}): Promise<CliServer> {
  const child = spawn(process.execPath, [cli, 'serve', '--port', '0', '--admin-port', '0', '--log-level', 'warn', ...args], { cwd: options.cwd ?? projectRoot });
  let out = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr?.on('data', (d: Buffer) => (out += d.toString()));
  const until = Date.now() + 60_000;
  while (!/queries on (http:\/\/\S+) .*admin on (http:\/\/\S+)/.test(out)) {
    if (Date.now() > until || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`server did not start (exit ${child.exitCode}): ${out}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  const match = /queries on (http:\/\/\S+) .*admin on (http:\/\/\S+)/.exec(out) as RegExpExecArray;
  return { child, queryUrl: match[1] as string, adminUrl: match[2] as string, output: () => out };
}

/** The exit code once the process has exited and its output is read to the end. */
export function exitOf(child: ChildProcess): Promise<number | null> {
  return child.exitCode !== null && child.stdout?.readableEnded !== false ? Promise.resolve(child.exitCode) : new Promise((resolve) => child.once('close', (code) => resolve(code)));
}

/** POSTs JSON to an admin or query route; resolves with the status and the parsed body. */
export async function post(url: string, body: unknown): Promise<{ status: number; body: any }> {
  const response = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const text = await response.text();
  return { status: response.status, body: text.length === 0 ? undefined : JSON.parse(text) };
}
