import test from 'ava';
import { CONTAINER_ID, containerKey, encodeToken, heartbeatEveryMs, inferSubject, parseAnnouncement } from '../../../src/cluster/container-protocol.js';

test('names become one subject token each: letters, digits, _ and - stay, anything else is =XX', (t) => {
  t.is(encodeToken('mnist-mlp'), 'mnist-mlp');
  t.is(encodeToken('a_b'), 'a_b');
  t.is(encodeToken('mnist.v2'), 'mnist=2Ev2');
  t.is(encodeToken('a*b>c d'), 'a=2Ab=3Ec=20d');
  t.is(encodeToken('é'), '=C3=A9');
  for (const name of ['x.y', 'A1._-z', '1.0.3']) t.notRegex(encodeToken(name), /[.*> ]/);
});

test('subjects and bucket keys are the documented ones', (t) => {
  t.is(inferSubject('mnist-mlp', '1', 'c1'), 'clipper.v1.infer.mnist-mlp.1.c1');
  t.is(inferSubject('m.x', '1.2', 'abc'), 'clipper.v1.infer.m=2Ex.1=2E2.abc');
  t.is(containerKey('mnist-mlp', '1', 'c1'), 'mnist-mlp.1.c1');
  t.true(CONTAINER_ID.test('a1b2'));
  t.false(CONTAINER_ID.test('A1'));
  t.false(CONTAINER_ID.test('a.b'));
  t.false(CONTAINER_ID.test(''));
});

test('a heartbeat is a third of the entry life, never under 100 ms', (t) => {
  t.is(heartbeatEveryMs(3000), 1000);
  t.is(heartbeatEveryMs(100), 100);
});

test('announcements are read when well formed and ignored otherwise', (t) => {
  const good = { protocol: 1, id: 'c1', model: 'm', version: '1', subject: 's', inputDtype: 'float32', featureShape: [4], outputSize: 2, host: 'h', pid: 1, startedAt: '', heartbeatMs: 1000, batches: 0 };
  const bytes = (v: unknown) => new TextEncoder().encode(typeof v === 'string' ? v : JSON.stringify(v));
  t.deepEqual(parseAnnouncement(bytes(good)), good as never);
  t.is(parseAnnouncement(bytes('not json')), undefined);
  t.is(parseAnnouncement(bytes({ ...good, protocol: 2 })), undefined);
  t.is(parseAnnouncement(bytes({ ...good, inputDtype: 'float64' })), undefined);
  t.is(parseAnnouncement(bytes({ ...good, featureShape: 4 })), undefined);
});
