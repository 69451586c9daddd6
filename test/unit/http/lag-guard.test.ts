import test from 'ava';
import type { ModelInfo, ReplicaStatus } from '../../../src/index.js';
import { queuesBehind } from '../../../src/http/lag-guard.js';

const replica = (outstanding: number, batchLimit: number, extra: Partial<ReplicaStatus> = {}): ReplicaStatus =>
  ({ name: 'r', status: 'ready', ready: true, retired: false, batchLimit, outstanding, restarts: 0, counters: {}, ...extra }) as ReplicaStatus;

const models = (...replicaLists: ReplicaStatus[][]): ModelInfo[] =>
  replicaLists.map((replicas, i) => ({ name: `m${i}`, currentVersion: '1', linkedApps: [], versions: [{ replicas } as ModelInfo['versions'][number]] }));

test('queuesBehind: some serving replica holds more than two full batches', (t) => {
  const cases: [string, ModelInfo[], boolean][] = [
    ['no models', [], false],
    ['idle replicas', models([replica(0, 8), replica(0, 8)]), false],
    ['one batch running, one waiting', models([replica(16, 8)]), false],
    ['more than two batches', models([replica(17, 8)]), true],
    ['one backlogged model among idle ones', models([replica(0, 8)], [replica(0, 4), replica(9, 4)]), true],
    ['batch limit 0 counts as 1', models([replica(2, 0)]), false],
    ['batch limit 0 counts as 1, 3 waiting', models([replica(3, 0)]), true],
    ['a replica not ready is not counted', models([replica(100, 8, { ready: false })]), false],
    ['a retired replica draining is not counted', models([replica(100, 8, { retired: true })]), false],
  ];
  for (const [name, input, expected] of cases) t.is(queuesBehind(input), expected, name);
});
