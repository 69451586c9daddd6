/**
 * A model container on another "host" cut off by its network, under open-loop load. The other host is a network
 * namespace of the test's own joined to this machine by a veth pair (test/helpers/netns.ts); nats-server (the
 * test's own, on a free port, listening on 0.0.0.0) is reached from the namespace over the veth and from this
 * side over 127.0.0.1. One container runs in the namespace, one beside the frontend (`serve --nats --remote`,
 * so containers become replicas); then the machine's end of the veth goes down: no FIN, no RST, batches sent to
 * the far container just go unanswered, and its heartbeat stops. Counted: sent / answered / default / refused /
 * lost (lost must be 0, nothing may hang); service continues on the remaining container; when the link comes
 * back, the far container re-announces, becomes a replica again and, with the near one drained, answers alone.
 *
 * Needs root and iproute2 (CI has both; .ci/run installs iproute2 when missing). Elsewhere it skips with the
 * reason; in CI (CI=true) it runs, and an unusable `ip netns` fails it.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import test from 'ava';
import { connect } from '@nats-io/transport-node';
import { Kvm } from '@nats-io/kv';
import { digit, loadMnist, type Answer } from '../../src/index.js';
import { runOpenLoop } from '../../src/load/open-loop.js';
import { projectRoot } from '../../src/paths.js';
import { serve, type RunningServer } from '../../src/http/serve.js';
import { resolveServeSettings } from '../../src/http/settings.js';
import { cli, post } from '../helpers/cli-server.js';
import { NetnsLink, netnsUnusable } from '../helpers/netns.js';
import { natsRequired, natsServerBinary, TestNatsServer } from '../helpers/nats-server.js';

const inCi = process.env.CI === 'true';
const unusable = netnsUnusable() ?? (natsServerBinary() === undefined ? 'nats-server is not installed' : undefined);
const run = inCi || (unusable === undefined && natsRequired()) ? test.serial : test.serial.skip;
if (unusable !== undefined && !inCi) console.log(`partition.test: skipped, network namespaces are not usable here: ${unusable}`);

const { test: heldOut } = loadMnist();
const RATE = 200;
const SECONDS = 12;
const CUT_AT_MS = 2_000;
const DOWN_MS = 5_000;

/** Starts `clipper-ts container` (here or in the namespace) and waits for it to print `ready`. */
async function container(url: string, id: string, netns?: NetnsLink): Promise<{ child: ChildProcess; exited: Promise<number | null> }> {
  const args = [cli, 'container', '--nats', url, '--model', 'mnist-mlp', '--version', '1', '--id', id];
  const options = { stdio: ['ignore', 'pipe', 'inherit'] as ('ignore' | 'pipe' | 'inherit')[], cwd: projectRoot };
  const child = netns === undefined ? spawn(process.execPath, args, options) : netns.spawn(process.execPath, args, options);
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  await new Promise<void>((resolve, reject) => {
    let out = '';
    child.stdout?.on('data', (d: Buffer) => {
      out += d.toString();
      if (out.includes('ready')) resolve();
    });
    void exited.then((code) => reject(new Error(`container ${id} exited with ${code} before it was ready: ${out}`)));
  });
  child.stdout?.resume();
  return { child, exited };
}

const liveReplicas = (s: RunningServer): number => s.clipper.describeModel('mnist-mlp').replicas.filter((r) => !r.retired).length;

async function until(what: string, check: () => boolean | Promise<boolean>, ms: number): Promise<number> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > ms) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return Date.now();
}

run('a container on another host cut off by its network under open-loop load: nothing lost, service continues, it rejoins when the link is back', async (t) => {
  t.timeout(90_000);
  if (unusable !== undefined) {
    t.fail(`network namespaces must be usable in CI: ${unusable}`);
    return;
  }
  const nats = await TestNatsServer.start({ listen: '0.0.0.0' });
  t.teardown(() => nats.close());
  const link = NetnsLink.create();
  t.teardown(() => link.close());
  const farUrl = `nats://${link.hostAddress}:${nats.port}`;
  t.log(`namespace ${link.namespace}: ${link.nsAddress} <-> ${link.hostAddress} (${link.hostInterface}); nats-server on port ${nats.port}`);

  const far = await container(farUrl, 'far', link);
  const near = await container(nats.url, 'near');
  t.teardown(() => {
    far.child.kill('SIGKILL');
    near.child.kill('SIGKILL');
  });
  // What the containers themselves report in their heartbeats (the bucket, read with the NATS client alone).
  const nc = await connect({ servers: nats.url });
  t.teardown(() => nc.close());
  const kv = await new Kvm(nc).open('clipper-containers');
  const announced = async (id: string): Promise<{ batches: number } | undefined> => {
    const entry = await kv.get(`mnist-mlp.1.${id}`);
    return entry === null || entry.operation !== 'PUT' ? undefined : entry.json<{ batches: number }>();
  };

  const frontend = await serve(
    resolveServeSettings(['--port', '0', '--admin-port', '0', '--grpc-port', '0', '--log-level', 'silent', '--no-bundled', '--nats', nats.url, '--remote', '--max-event-loop-delay-ms', '0'], {}),
  );
  t.teardown(() => frontend.close());
  const admin = (route: string, body: unknown) => post(`${frontend.adminUrl}/admin/${route}`, body);
  t.is((await admin('add_app', { name: 'part', input_type: 'float32', input_shape: [784], default_output: -1, latency_slo_ms: 500 })).status, 200);
  t.is((await admin('add_model', { model_name: 'mnist-mlp', model_version: '1', model_data_path: 'mnist-mlp/1/model.onnx' })).status, 200);
  t.is((await admin('add_model_links', { app_name: 'part', model_names: ['mnist-mlp'] })).status, 200);
  await until('a replica per container', () => liveReplicas(frontend) === 2 && frontend.clipper.describeModel('mnist-mlp').readyReplicas === 2, 20_000);

  const tally = { sent: 0, model: 0, defaults: 0, refused: 0, lost: 0 };
  const modelAnsweredAt: number[] = [];
  const settled = new Set<number>();
  const marks = { cutAt: 0, isolatedAt: 0, upAt: 0, rejoinedAt: 0, farBatchesBeforeCut: 0 };
  const load = runOpenLoop<Answer>({
    rate: RATE,
    count: RATE * SECONDS,
    send: (i) => {
      tally.sent++;
      return frontend.clipper.predict('part', digit(heldOut, i % heldOut.count));
    },
    onOutcome: (o) => {
      if (settled.has(o.index)) tally.lost++;
      settled.add(o.index);
      if (o.error !== undefined) {
        if ((o.error as { code?: string }).code === 'OVERLOADED') tally.refused++;
        else tally.lost++;
      } else if (o.result?.isDefault === true) tally.defaults++;
      else {
        tally.model++;
        modelAnsweredAt.push(Date.now());
      }
    },
  });
  const events = (async () => {
    await new Promise((r) => setTimeout(r, CUT_AT_MS));
    marks.farBatchesBeforeCut = (await announced('far'))?.batches ?? 0;
    link.setLink('down');
    marks.cutAt = Date.now();
    // The far container's heartbeat stops; its entry expires (3 s) and the frontend drops its replica.
    marks.isolatedAt = await until('the cut-off container dropped', () => liveReplicas(frontend) === 1, DOWN_MS).catch(() => 0);
    await new Promise((r) => setTimeout(r, marks.cutAt + DOWN_MS - Date.now()));
    link.setLink('up');
    marks.upAt = Date.now();
    marks.rejoinedAt = await until('the far container a replica again', () => liveReplicas(frontend) === 2, 10_000).catch(() => 0);
  })();
  await Promise.all([load, events]);
  tally.lost += tally.sent - settled.size;

  const duringCut = modelAnsweredAt.filter((at) => at >= marks.isolatedAt && at < marks.upAt).length;
  const windowS = (marks.upAt - marks.isolatedAt) / 1000;
  t.log(
    JSON.stringify({
      ...tally,
      farBatchesBeforeCut: marks.farBatchesBeforeCut,
      droppedAfterMs: marks.isolatedAt === 0 ? null : marks.isolatedAt - marks.cutAt,
      answeredByModelPerSecondWhileCut: windowS > 0 ? Math.round(duringCut / windowS) : null,
      rejoinedAfterMs: marks.rejoinedAt === 0 ? null : marks.rejoinedAt - marks.upAt,
    }),
  );
  t.is(tally.lost, 0);
  t.is(tally.sent, RATE * SECONDS);
  t.is(tally.model + tally.defaults + tally.refused, tally.sent);
  t.true(marks.farBatchesBeforeCut > 0, 'the far container served through the link before the cut');
  t.not(marks.isolatedAt, 0, 'the cut-off container stopped being a replica while the link was down');
  // Service continued on the near container: once the far one was dropped, the model answered (nearly) the
  // offered rate until the link came back.
  t.true(duringCut >= 0.5 * RATE * windowS, `${duringCut} answered by the model in the ${windowS} s between the drop and the link coming back`);
  t.not(marks.rejoinedAt, 0, 'the far container became a replica again after the link came back');

  // It really serves again: with the near container drained, the far one answers alone.
  near.child.kill('SIGTERM');
  t.is(await near.exited, 0);
  let inARow = 0;
  await until(
    'ten answers in a row from the far container alone',
    async () => {
      inARow = (await frontend.clipper.predict('part', digit(heldOut, inARow))).isDefault ? 0 : inARow + 1;
      return inARow >= 10;
    },
    15_000,
  );
  t.is(inARow, 10);
});
