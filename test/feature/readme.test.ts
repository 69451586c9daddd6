import { execFile } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import test from 'ava';
import { projectRoot } from '../../src/paths.js';

const run = promisify(execFile);
const readme = readFileSync(path.join(projectRoot, 'README.md'), 'utf8');

/** The code block right after an `<!-- example: name -->` marker in the README. */
function example(name: string): string {
  const marker = `<!-- example: ${name} -->`;
  const at = readme.indexOf(marker);
  if (at < 0) throw new Error(`README has no ${marker}`);
  const match = /```[a-z]*\n([\s\S]*?)```/.exec(readme.slice(at));
  if (match === null) throw new Error(`no code block after ${marker}`);
  return match[1] as string;
}

test('the README quick-start example runs as written and answers a real digit', async (t) => {
  // Written inside the project, so `import ... from 'clipper-ts'` resolves to this package as it does for users.
  const file = path.join(projectRoot, '.readme-example.mjs');
  writeFileSync(file, example('quick-start'));
  t.teardown(() => rmSync(file, { force: true }));
  const { stdout } = await run(process.execPath, [file], { cwd: projectRoot, timeout: 60_000 });
  const answer = JSON.parse(stdout.trim().split('\n').at(-1) as string) as Record<string, unknown>;
  t.is(answer.output, answer.label, 'the MLP reads the first held-out digit right');
  t.is(answer.model, 'mnist-mlp');
  t.is(answer.version, '1');
  t.false(answer.isDefault);
});
