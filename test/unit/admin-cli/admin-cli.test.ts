import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { AdminCallError, exitCodes, joinNegativeValues } from '../../../src/admin-cli/admin-client.js';
import { adminMain, adminTarget } from '../../../src/admin-cli/admin-commands.js';
import { nextVersion } from '../../../src/admin-cli/deploy-command.js';
import { formatTable } from '../../../src/admin-cli/table.js';

test('tables pad every column but the last to its widest cell', (t) => {
  t.is(formatTable(['MODEL', 'V', 'APPS'], [['mnist-mlp', '12', 'digits'], ['m', '1', '']]), 'MODEL      V   APPS\nmnist-mlp  12  digits\nm          1');
});

test('HTTP statuses map to distinct exit codes', (t) => {
  const table: [number, number][] = [
    [0, exitCodes.unreachable],
    [400, exitCodes.refused],
    [403, exitCodes.refused],
    [401, exitCodes.unauthorized],
    [404, exitCodes.notFound],
    [409, exitCodes.conflict],
    [500, exitCodes.serverError],
    [503, exitCodes.serverError],
  ];
  for (const [status, code] of table) t.is(new AdminCallError('x', status, undefined).exitCode, code, `HTTP ${status}`);
  t.is(new Set(Object.values(exitCodes)).size, Object.keys(exitCodes).length, 'exit codes are distinct');
});

test('a negative value after a flag that takes one is joined to it; positionals and other flags are left alone', (t) => {
  t.deepEqual(joinNegativeValues(['app', '--default-output', '-1', '--slo-ms', '20', '-5'], new Set(['default-output', 'slo-ms'])), [
    'app',
    '--default-output=-1',
    '--slo-ms',
    '20',
    '-5',
  ]);
});

test('the next version is one past the highest numeric version folder', (t) => {
  const repo = mkdtempSync(path.join(tmpdir(), 'clipper-next-'));
  t.teardown(() => rmSync(repo, { recursive: true, force: true }));
  t.is(nextVersion(repo, 'm'), '1');
  for (const v of ['1', '2', '10', '2-broken']) mkdirSync(path.join(repo, 'm', v), { recursive: true });
  writeFileSync(path.join(repo, 'm', '99'), 'a file, not a version');
  t.is(nextVersion(repo, 'm'), '11');
});

test('the admin URL comes from the flag, then CLIPPER_ADMIN_URL, then the default; a bad one is a usage error', async (t) => {
  t.deepEqual(adminTarget({}, {}), { url: 'http://127.0.0.1:1338' });
  t.deepEqual(adminTarget({}, { CLIPPER_ADMIN_URL: 'http://h:1', CLIPPER_ADMIN_TOKEN: 'k' }), { url: 'http://h:1', token: 'k' });
  t.deepEqual(adminTarget({ url: 'http://f:2' }, { CLIPPER_ADMIN_URL: 'http://h:1' }), { url: 'http://f:2' });
  const errors: string[] = [];
  t.is(await adminMain(['apps', '--url', 'ftp://x'], () => {}, (line) => errors.push(line)), exitCodes.usage);
  t.regex(errors.join('\n'), /--url must be an http\(s\) URL/);
  t.is(await adminMain(['apps', '--bogus'], () => {}, () => {}), exitCodes.usage);
  t.is(await adminMain(['set-replicas', 'm', 'two', '--url', 'http://127.0.0.1:1'], () => {}, () => {}), exitCodes.usage);
});
