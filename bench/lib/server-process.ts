import { fork, type ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import { fileURLToPath } from 'node:url';

/** A server running in a process of its own. */
export interface ServerProcess {
  url: string;
  child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts a baseline server module (under bench/baselines/) in its own process and waits for the `{ url }` it
 * reports once it listens. Stopping closes the IPC channel (the server closes and exits), and kills it after 5 s.
 */
export function startServerProcess(module: string, args: string[] = []): Promise<ServerProcess> {
  const file = fileURLToPath(new URL(`../baselines/${module}${import.meta.url.endsWith('.ts') ? '.ts' : '.js'}`, import.meta.url));
  const child = fork(file, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  return new Promise((resolve, reject) => {
    const exited = (code: number | null): void => reject(new Error(`${module} exited with ${code} before listening`));
    child.once('exit', exited);
    child.once('message', (message: { url: string }) => {
      child.off('exit', exited);
      resolve({
        url: message.url,
        child,
        stop: () =>
          new Promise<void>((done) => {
            if (child.exitCode !== null) return done();
            const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
            child.once('exit', () => {
              clearTimeout(timer);
              done();
            });
            child.disconnect();
          }),
      });
    });
  });
}

/**
 * The child's side, for a baseline on a bare node:http server: keep-alive connections held 60 s, listens on a
 * free port of 127.0.0.1, reports `{ url }` to the parent once listening, and closes and exits when the channel
 * closes.
 */
export function serveToParent(server: Server): void {
  server.keepAliveTimeout = 60_000;
  server.listen(0, '127.0.0.1', () => {
    const address = server.address();
    if (address !== null && typeof address === 'object') process.send?.({ url: `http://127.0.0.1:${address.port}` });
  });
  process.on('disconnect', () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  });
}
