/**
 * A nats-server of a test's own, with JetStream in a temporary folder, on a free port of 127.0.0.1 (never the
 * machine's 4222), that the test can stop and start again on the same port and store.
 *
 * Where nats-server is missing the tests that need it skip, except in CI (CI=true), where that is a failure:
 * .ci/run installs it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as tcpConnect } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

const CANDIDATES = ['/usr/sbin/nats-server', '/usr/bin/nats-server', '/usr/local/bin/nats-server'];

/** The nats-server binary, or undefined when it is not installed. */
export function natsServerBinary(): string | undefined {
  return CANDIDATES.find((c) => existsSync(c));
}

/** Whether tests needing nats-server must run: always in CI, elsewhere when it is installed. */
export function natsRequired(): boolean {
  return process.env.CI === 'true' || natsServerBinary() !== undefined;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number };
      server.close(() => resolve(port));
    });
  });
}

async function accepting(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = tcpConnect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

export class TestNatsServer {
  readonly port: number;
  readonly storeDir: string;
  /** The address it listens on: 127.0.0.1, or 0.0.0.0 for clients on other (namespaced) hosts too. */
  readonly listen: string;
  #process: ChildProcess | undefined;

  private constructor(port: number, storeDir: string, listen: string) {
    this.port = port;
    this.storeDir = storeDir;
    this.listen = listen;
  }

  get url(): string {
    return `nats://127.0.0.1:${this.port}`;
  }

  static async start(options: { listen?: '127.0.0.1' | '0.0.0.0' } = {}): Promise<TestNatsServer> {
    const server = new TestNatsServer(await freePort(), mkdtempSync(path.join(tmpdir(), 'clipper-nats-')), options.listen ?? '127.0.0.1');
    await server.resume();
    return server;
  }

  /** Starts the server (again), same port and store; resolves once it accepts connections. */
  async resume(): Promise<void> {
    const binary = natsServerBinary();
    if (binary === undefined) throw new Error('nats-server is not installed (apt-get install nats-server; .ci/run does it)');
    const child = spawn(binary, ['-js', '-sd', this.storeDir, '-a', this.listen, '-p', String(this.port)], { stdio: 'ignore' });
    this.#process = child;
    const until = Date.now() + 10_000;
    while (!(await accepting(this.port))) {
      if (child.exitCode !== null) throw new Error(`nats-server exited with code ${child.exitCode} on port ${this.port}`);
      if (Date.now() > until) throw new Error(`nats-server did not accept connections on port ${this.port} within 10 s`);
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  /** Stops the server (SIGTERM by default; SIGKILL for a crash) and waits for its exit. */
  async stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<void> {
    const child = this.#process;
    this.#process = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise((resolve) => child.once('exit', resolve));
    child.kill(signal);
    await exited;
  }

  async close(): Promise<void> {
    await this.stop();
    rmSync(this.storeDir, { recursive: true, force: true });
  }
}
