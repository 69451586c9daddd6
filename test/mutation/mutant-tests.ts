/**
 * The test command Stryker's command runner calls for each mutant (`npm run mutate`, stryker.config.json).
 *
 * The command runner knows nothing about tests: it runs one command per mutant with the mutant's id in
 * `__STRYKER_ACTIVE_MUTANT__` and reads the exit code. Running every pure core's unit tests for every mutant
 * costs ~10 s a mutant on this machine (hours for ~1,700 mutants). Tests mirror the source, so this finds the
 * mutant's file by its id in the instrumented build and runs that file's own unit test
 * (`src/batching/batch-queue.ts` -> `test/unit/batching/batch-queue.test.ts`), or its folder's tests when the
 * file has none. A mutant that only another file's tests would catch counts as survived: the score can only
 * be understated. Without an active mutant (Stryker's dry run) it runs all four folders.
 *
 * The two speed tests (10^6 policy updates within 5 s) are left out: instrumented code runs every statement
 * through Stryker's mutant switch and takes about twice as long, so they fail without any mutant, and their
 * other checks (finite, normalised weights) are covered by the table tests.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';

export const MUTATED_FOLDERS = ['batching', 'selection', 'routing', 'kernel'] as const;

/** The tests to run for mutant `id`: its file's own unit test, or its folder's; undefined if not found. */
export function testsForMutant(root: string, id: string): string | undefined {
  const marker = `("${id}")`;
  for (const folder of MUTATED_FOLDERS) {
    const dir = path.join(root, 'dist/src', folder);
    for (const file of readdirSync(dir)) {
      if (!file.endsWith('.js')) continue;
      const code = readFileSync(path.join(dir, file), 'utf8');
      if (!code.includes(`stryMutAct_9fa48${marker}`) && !code.includes(`stryCov_9fa48${marker}`)) continue;
      const own = `dist/test/unit/${folder}/${file.replace(/\.js$/, '.test.js')}`;
      return existsSync(path.join(root, own)) ? own : `dist/test/unit/${folder}`;
    }
  }
  return undefined;
}

function main(): void {
  const root = process.cwd();
  const id = process.env.__STRYKER_ACTIVE_MUTANT__;
  const only = id === undefined ? undefined : testsForMutant(root, id);
  const targets = only === undefined ? MUTATED_FOLDERS.map((f) => `dist/test/unit/${f}`) : [only];
  // Found by module resolution, not under the sandbox: Stryker links no node_modules into its sandbox when the
  // project's node_modules is itself a symbolic link (a git worktree sharing main's), and resolution then
  // walks up from the sandbox (inside the project's .stryker-tmp) to the project's own.
  const ava = path.join(path.dirname(createRequire(import.meta.url).resolve('ava')), 'cli.mjs');
  const args = [ava, '--fail-fast', '--match=!10^6 updates*', ...targets];
  const run = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' });
  process.exit(run.status ?? 1);
}

main();
