import { readdirSync, readFileSync } from 'node:fs';
import test from 'ava';
import { Clipper, type Answer, type BatchEvent } from '../../src/index.js';
import { serve } from '../../src/http/serve.js';
import { resolveServeSettings } from '../../src/http/settings.js';
import { runOpenLoop } from '../../src/load/open-loop.js';
import { digit, loadMnist } from '../../src/data/mnist-data.js';
import { waitFor } from '../helpers/fixtures.js';

// deployModel({ isolation: 'process' }): each replica's model runs in a child process. A native crash there
// (here SIGKILL, as the kernel would deliver it) ends only the child: its batch is handed back like a thread
// death, the supervisor starts a new child, and every query gets exactly one answer.

const { test: heldOut } = loadMnist();

/** The model processes this process forked (their parent is us, their command names the worker entry). */
function modelProcesses(): number[] {
  const pids: number[] = [];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    try {
      const stat = readFileSync(`/proc/${name}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid !== process.pid) continue;
      if (readFileSync(`/proc/${name}/cmdline`, 'utf8').includes('process-worker-entry')) pids.push(Number(name));
    } catch {
      // The process ended while we looked.
    }
  }
  return pids;
}

function percentile(values: number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(p * sorted.length))] ?? Number.NaN;
}

test.serial('a process-isolated replica answers exactly as a thread one does, and its children go away on stop', async (t) => {
  const clipper = await Clipper.start();
  await clipper.registerApp({ name: 'thread', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 1000, cacheMaxBytes: 0 });
  await clipper.registerApp({ name: 'process', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 1000, cacheMaxBytes: 0 });
  await clipper.deployModel({ name: 'mnist-thread', version: '1', path: 'models/mnist-mlp/1/model.onnx', replicas: 1 });
  await clipper.deployModel({ name: 'mnist-process', version: '1', path: 'models/mnist-mlp/1/model.onnx', replicas: 2, isolation: 'process' });
  await clipper.linkModel('thread', 'mnist-thread');
  await clipper.linkModel('process', 'mnist-process');
  t.is(modelProcesses().length, 2);
  const n = 300;
  const inputs = Array.from({ length: n }, (_, i) => digit(heldOut, i));
  const [viaThread, viaProcess] = await Promise.all([Promise.all(inputs.map((x) => clipper.predict('thread', x))), Promise.all(inputs.map((x) => clipper.predict('process', x)))]);
  for (let i = 0; i < n; i++) {
    t.false(viaProcess[i]?.isDefault);
    t.deepEqual(viaProcess[i]?.scores, viaThread[i]?.scores);
  }
  await clipper.stop();
  await waitFor(() => modelProcesses().length === 0, 5_000, 'model processes gone after stop');
});

test.serial('SIGKILL of a child-process replica while its model runs, under load: nothing is lost, the child is restarted', async (t) => {
  const clipper = await Clipper.start({ supervision: { backoffBaseMs: 50, maxRestarts: 20 } });
  t.teardown(() => clipper.stop());
  await clipper.registerApp({ name: 'digits', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 300, cacheMaxBytes: 0 });
  await clipper.deployModel({ name: 'mnist-mlp', version: '1', path: 'models/mnist-mlp/1/model.onnx', replicas: 2, isolation: 'process' });
  await clipper.linkModel('digits', 'mnist-mlp');
  const kills: number[] = [];
  const deaths = (): number => clipper.describeModel('mnist-mlp').replicas.reduce((n, r) => n + r.counters.workerDeaths, 0);
  const tally = { sent: 0, model: 0, defaults: 0, refused: 0, lost: 0 };
  const settled = new Set<number>();
  const load = runOpenLoop<Answer>({
    rate: 400,
    count: 1600,
    send: (i) => {
      tally.sent++;
      return clipper.predict('digits', digit(heldOut, i % heldOut.count));
    },
    onOutcome: (o) => {
      if (settled.has(o.index)) tally.lost++;
      settled.add(o.index);
      if (o.error !== undefined) {
        if ((o.error as { code?: string }).code === 'OVERLOADED') tally.refused++;
        else tally.lost++;
      } else if (o.result?.isDefault) tally.defaults++;
      else tally.model++;
    },
  });
  for (let k = 0; k < 4; k++) {
    await new Promise((r) => setTimeout(r, 500));
    // Kill a serving child, not one still loading its model (that is a failed start, not a death mid-run).
    await waitFor(() => clipper.describeModel('mnist-mlp').readyReplicas === 2, 10_000, 'both replicas ready');
    const pids = modelProcesses().filter((pid) => !kills.includes(pid));
    const victim = pids[k % Math.max(1, pids.length)];
    if (victim !== undefined) {
      process.kill(victim, 'SIGKILL');
      kills.push(victim);
      // Each kill is seen as one worker death before the next.
      await waitFor(() => deaths() >= kills.length, 10_000, `worker death ${kills.length} noticed`);
    }
  }
  await load;
  tally.lost += tally.sent - settled.size;
  t.log(JSON.stringify({ ...tally, kills: kills.length }));
  t.is(tally.lost, 0);
  t.is(tally.sent, 1600);
  t.is(tally.model + tally.defaults + tally.refused, 1600);
  t.true(tally.model > 400, `${tally.model} answered by the model`);
  t.is(kills.length, 4);
  t.true(deaths() >= 4, `${deaths()} worker deaths`);
  await waitFor(() => clipper.describeModel('mnist-mlp').readyReplicas === 2, 15_000, 'both replicas back');
  t.is(modelProcesses().length, 2);
  t.false((await clipper.predict('digits', digit(heldOut, 1))).isDefault);
});

test.serial('per-batch round trip outside the model: thread vs child process (p50, p99)', async (t) => {
  const clipper = await Clipper.start();
  t.teardown(() => clipper.stop());
  const hops: Record<string, number[]> = { thread: [], process: [] };
  clipper.onBatch((e: BatchEvent) => hops[e.model === 'hop-thread' ? 'thread' : 'process']?.push(e.batchMs - e.computeMs));
  for (const isolation of ['thread', 'process'] as const) {
    await clipper.registerApp({ name: `hop-${isolation}`, inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 1000, cacheMaxBytes: 0 });
    await clipper.deployModel({ name: `hop-${isolation}`, version: '1', path: 'models/mnist-mlp/1/model.onnx', replicas: 1, isolation, batching: { mode: 'none' } });
    await clipper.linkModel(`hop-${isolation}`, `hop-${isolation}`);
  }
  // Side by side, one query at a time, alternating: the same machine noise falls on both.
  for (let i = 0; i < 400; i++) {
    await clipper.predict('hop-thread', digit(heldOut, i));
    await clipper.predict('hop-process', digit(heldOut, i));
  }
  const report = Object.fromEntries(Object.entries(hops).map(([k, v]) => [k, { batches: v.length, p50: +percentile(v, 0.5).toFixed(3), p99: +percentile(v, 0.99).toFixed(3) }]));
  t.log(`hop ms (batchMs - computeMs): ${JSON.stringify(report)}`);
  t.true((hops.thread?.length ?? 0) >= 400 && (hops.process?.length ?? 0) >= 400);
});

test.serial('the admin add_model call takes isolation: "process" (and refuses an unknown one)', async (t) => {
  const server = await serve(resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent', '--admin-token', 'secret', '--max-event-loop-delay-ms', '0']));
  t.teardown(() => server.close());
  const before = modelProcesses().length;
  const add = (body: unknown) => fetch(`${server.adminUrl}/admin/add_model`, { method: 'POST', headers: { authorization: 'Bearer secret', 'content-type': 'application/json' }, body: JSON.stringify(body) });
  const refused = await add({ model_name: 'iso', model_version: '1', model_data_path: 'mnist-mlp/1/model.onnx', isolation: 'vm' });
  t.is(refused.status, 400);
  const added = await add({ model_name: 'iso', model_version: '1', model_data_path: 'mnist-mlp/1/model.onnx', replicas: 1, isolation: 'process' });
  t.is(added.status, 200, await added.clone().text());
  t.is(modelProcesses().length, before + 1);
});
