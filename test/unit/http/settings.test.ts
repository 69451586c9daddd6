import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { resolveServeSettings, serveDefaults } from '../../../src/http/settings.js';

test('defaults: Clipper ports, admin on loopback, frozen', (t) => {
  const s = resolveServeSettings([], {});
  t.is(s.port, 1337);
  t.is(s.adminPort, 1338);
  t.is(s.adminHost, '127.0.0.1');
  t.is(s.policy, 'exp4');
  t.true(Object.isFrozen(s));
  t.deepEqual({ ...s }, { ...serveDefaults });
});

test('flags win over the environment, which wins over the config file', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clipper-settings-'));
  const file = path.join(dir, 'settings.json');
  writeFileSync(file, JSON.stringify({ port: 9000, replicas: 3, adminToken: 'from-file', sloMs: 50 }));
  const s = resolveServeSettings(['--config', file, '--port', '9002'], { CLIPPER_PORT: '9001', CLIPPER_REPLICAS: '2' });
  t.is(s.port, 9002);
  t.is(s.replicas, 2);
  t.is(s.adminToken, 'from-file');
  t.is(s.sloMs, 50);
});

test('bad settings name the setting, the source and what was expected', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clipper-settings-'));
  const unknownKey = path.join(dir, 'a.json');
  writeFileSync(unknownKey, JSON.stringify({ prot: 1 }));
  const notJson = path.join(dir, 'b.json');
  writeFileSync(notJson, '{port:');
  const cases: [string[], NodeJS.ProcessEnv, RegExp][] = [
    [['--port', '70000'], {}, /^port \(from --port\) must be an integer in \[0, 65535\]; got "70000"$/],
    [[], { CLIPPER_REPLICAS: '-1' }, /^replicas \(from \$CLIPPER_REPLICAS\) must be an integer/],
    [['--log-level', 'loud'], {}, /^logLevel \(from --log-level\) must be one of fatal, error, warn, info, debug, trace, silent; got "loud"$/],
    [['--policy', 'best'], {}, /^policy \(from --policy\) must be one of static, exp3, exp4; got "best"$/],
    [['--shed-status', '500'], {}, /^shedStatus \(from --shed-status\) must be 429 or 503; got "500"$/],
    [['--admin-host', '0.0.0.0'], {}, /is not loopback: set adminToken/],
    [['--host', 'example.com'], {}, /^host must be an IP address or localhost/],
    [['--port', '5000', '--admin-port', '5000'], {}, /^port and adminPort must differ/],
    [['--frobnicate'], {}, /Unknown option '--frobnicate'/],
    [['--config', unknownKey], {}, /prot is not a setting/],
    [['--config', notJson], {}, /could not be read as JSON/],
  ];
  for (const [argv, env, message] of cases) {
    const error = t.throws(() => resolveServeSettings(argv, env));
    t.is((error as { code?: string }).code, 'INVALID_OPTION');
    t.regex(error?.message ?? '', message, argv.join(' ') || JSON.stringify(env));
  }
  t.is(resolveServeSettings(['--admin-host', '0.0.0.0', '--admin-token', 't'], {}).adminHost, '0.0.0.0');
});

test('shed status: 503 by default, 429 from a flag, the environment or a config file', (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clipper-settings-'));
  const file = path.join(dir, 'shed.json');
  writeFileSync(file, JSON.stringify({ shedStatus: 429 }));
  t.is(resolveServeSettings([], {}).shedStatus, 503);
  t.is(resolveServeSettings(['--shed-status', '429'], {}).shedStatus, 429);
  t.is(resolveServeSettings([], { CLIPPER_SHED_STATUS: '429' }).shedStatus, 429);
  t.is(resolveServeSettings(['--config', file], {}).shedStatus, 429);
});
