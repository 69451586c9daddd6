import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test from 'ava';
import { copyState, decodeState, emptyState, encodeState, mutations } from '../../../src/http/control/control-state.js';
import { FileStateStore, MemoryStateStore, StateConflictError } from '../../../src/http/control/state-store.js';
import { resolveServeSettings } from '../../../src/http/settings.js';

test('the admin calls as state changes: links follow models, replicas go to the current version', (t) => {
  const s = emptyState();
  mutations.registerApp({ name: 'app', inputType: 'float32', inputShape: [2], defaultOutput: 0, policy: { kind: 'exp4' } })(s);
  mutations.deployModel({ name: 'm', version: '1', path: 'm/1/model.onnx', replicas: 1 })(s);
  mutations.deployModel({ name: 'm', version: '2', path: 'm/2/model.onnx', replicas: 1 })(s);
  mutations.deployModel({ name: 'n', version: '1', path: 'n/1/model.onnx' })(s);
  mutations.linkModel('app', 'm')(s);
  mutations.linkModel('app', 'n')(s);
  mutations.linkModel('app', 'm')(s);
  mutations.setModelVersion('m', '1')(s);
  mutations.setNumReplicas('m', 3)(s);
  t.deepEqual(s.apps[0]?.links, ['m', 'n']);
  t.deepEqual(s.apps[0]?.policy, { kind: 'exp4' });
  t.is(s.models[0]?.current, '1');
  t.deepEqual(s.models[0]?.versions.map((v) => v.replicas), [3, 1]);
  mutations.removeModel('m')(s);
  t.deepEqual(s.models.map((m) => m.name), ['n']);
  t.deepEqual(s.apps[0]?.links, ['n']);
  t.deepEqual(decodeState(encodeState(s), 'x'), s);
  const copy = copyState(s);
  mutations.unlinkModel('app', 'n')(copy);
  t.deepEqual(s.apps[0]?.links, ['n'], 'a copy is a copy');
});

test('a document that is not a state is refused, naming where it came from and what was expected', (t) => {
  t.throws(() => decodeState('{', 'state file /x'), { code: 'INVALID_OPTION', message: /^state file \/x is not JSON/ });
  t.throws(() => decodeState('{"apps": []}', 'state file /x'), { message: /not a clipper-ts control-plane state \(expected \{"format": "clipper-ts\/control-state"/ });
  const noCurrent = { ...emptyState(), models: [{ name: 'm', current: '2', versions: [{ name: 'm', version: '1', path: 'p' }] }] };
  t.throws(() => decodeState(JSON.stringify(noCurrent), 'bucket'), { message: /^bucket: each model needs name, versions and a current version among them/ });
});

test('the state file: written whole (no temporary left), read back, compare-and-set on the revision', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'clipper-state-unit-'));
  const file = path.join(dir, 'deep', 'state.json');
  const store = new FileStateStore(file);
  t.deepEqual(await store.read(), { state: undefined, revision: 0 });
  const s = emptyState();
  mutations.registerApp({ name: 'a', inputType: 'int32', inputShape: [1], defaultOutput: null, policy: { kind: 'static' } })(s);
  const r1 = await store.write(s, 0);
  t.true(r1 > 0);
  t.deepEqual(readdirSync(path.dirname(file)), ['state.json']);
  t.deepEqual(JSON.parse(readFileSync(file, 'utf8')), s);
  const error = await t.throwsAsync(store.write(emptyState(), 0), { instanceOf: StateConflictError });
  t.is(error?.status, 409);
  t.is(error?.code, 'STATE_CONFLICT');
  t.deepEqual(JSON.parse(readFileSync(file, 'utf8')), s, 'a refused write changes nothing');
  const again = new FileStateStore(file);
  const read = await again.read();
  t.deepEqual(read.state, s);
  t.true((await again.write(emptyState(), read.revision)) > read.revision);

  const memory = new MemoryStateStore();
  t.is(await memory.write(s, 0), 1);
  await t.throwsAsync(memory.write(s, 0), { instanceOf: StateConflictError });
});

test('serve settings: where the state lives', (t) => {
  t.is(resolveServeSettings([], {}).state, 'clipper-state.json');
  t.is(resolveServeSettings(['--port', '0'], {}).state, undefined, 'a server on a free port keeps none unless told');
  t.is(resolveServeSettings(['--port', '0', '--state', '/tmp/s.json'], {}).state, '/tmp/s.json');
  t.is(resolveServeSettings(['--state', 'off'], {}).state, undefined);
  t.is(resolveServeSettings([], { CLIPPER_STATE: '/tmp/e.json' }).state, '/tmp/e.json');
  const shared = resolveServeSettings(['--nats', 'nats://127.0.0.1:4222', '--remote'], {});
  t.is(shared.state, undefined);
  t.true(shared.remote);
  t.throws(() => resolveServeSettings(['--nats', 'nats://127.0.0.1:4222', '--state', '/tmp/s.json'], {}), { message: /state \(\/tmp\/s.json\) is for a server without nats/ });
  t.throws(() => resolveServeSettings(['--remote'], {}), { message: /remote needs nats/ });
  t.false(resolveServeSettings(['--no-bundled'], {}).bundled);
});
