import test from 'ava';
import { Clipper, OverloadedError, type Answer } from '../../src/index.js';
import { serve } from '../../src/http/serve.js';
import { resolveServeSettings } from '../../src/http/settings.js';
import { fixtureModels } from '../helpers/fixtures.js';

/**
 * Goodput under overload (issue 13), on real worker threads: the time-bound JS model (4 ms + 0.5 ms a row,
 * waiting on a timer, no CPU: test/fixtures/models/timed) behind one replica, a 20 ms SLO, no cache. Its
 * capacity is about 800 queries/s; the test offers about three times that for two seconds, open loop, and
 * checks what admission control promises: what it admits gets a model's answer (at least 95%), and the rest
 * is refused at once with 503 and a Retry-After. The model uses no CPU, so a busy 2-core machine slows only the
 * bookkeeping, not the model.
 */
test('at 3x capacity, admitted queries get a model answer and the rest are refused with 503 at once', async (t) => {
  const clipper = await Clipper.start({ modelRepository: fixtureModels });
  try {
    await clipper.registerApp({ name: 'timed', inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: 20, cacheMaxBytes: 0 });
    await clipper.deployModel({ name: 'timed', version: '1', path: 'timed/1/model.mjs', replicas: 1 });
    await clipper.linkModel('timed', 'timed');
    const input = new Float32Array(784);
    let answers: Answer[] = [];
    let refusals: { error: OverloadedError; ms: number }[] = [];
    let other: unknown[] = [];
    let defaultAt: number[] = [];
    let started = 0;
    const rate = 2400;
    /** Open loop for `seconds`: every millisecond tick sends the queries due by then (2,400/s), however the answers come. */
    const load = async (seconds: number): Promise<number> => {
      answers = [];
      refusals = [];
      other = [];
      defaultAt = [];
      const pending: Promise<void>[] = [];
      const send = (): void => {
        const sentAt = performance.now();
        pending.push(
          clipper.predict('timed', input).then(
            (a) => {
              answers.push(a);
              if (a.isDefault) defaultAt.push(Math.round(sentAt - started));
            },
            (error: unknown) => void (error instanceof OverloadedError ? refusals.push({ error, ms: performance.now() - sentAt }) : other.push(error)),
          ),
        );
      };
      started = performance.now();
      let count = 0;
      await new Promise<void>((resolve) => {
        const tick = setInterval(() => {
          const due = Math.min(rate * seconds, Math.floor(((performance.now() - started) / 1000) * rate));
          while (count < due) {
            count++;
            send();
          }
          if (count >= rate * seconds) {
            clearInterval(tick);
            resolve();
          }
        }, 1);
      });
      await Promise.all(pending);
      return count;
    };
    // The first half second of overload is not counted: the replica's code is still being optimised and its
    // admission is still learning how late batches finish (measured under c8: a burst of ~50 late answers
    // around 200 ms in, then steady). The property is about the system at its capacity, so it is measured after.
    const warmup = await load(0.5);
    t.is(answers.length + refusals.length, warmup, 'exactly one outcome per query in the warm-up too');
    const [warmReplica] = clipper.getModels()[0]?.versions[0]?.replicas ?? [];
    const before = { admitted: warmReplica?.counters.admitted ?? 0, refused: warmReplica?.counters.refused ?? 0 };
    const sent = await load(2);
    const model = answers.filter((a) => !a.isDefault).length;
    const defaults = answers.length - model;
    t.log(`sent ${sent}: ${model} model answers, ${defaults} defaults, ${refusals.length} refused`);
    t.log(`defaults sent at (ms): ${defaultAt.join(' ')}`);
    t.deepEqual(other, [], 'every query was answered or refused for overload, nothing else');
    t.is(answers.length + refusals.length, sent, 'exactly one outcome per query');
    t.true(refusals.length > sent / 3, `the surplus is refused (${refusals.length} of ${sent})`);
    t.true(model > 0);
    t.true(model / answers.length >= 0.95, `admitted queries answered by the model: ${model} of ${answers.length} (${defaults} defaults)`);
    for (const { error } of refusals) {
      t.is(error.status, 503);
      t.true(error.retryAfterSeconds >= 1);
    }
    // At once: a refusal is decided on arrival, never after waiting for the deadline (liveness bound, not a timing).
    const slowRefusals = refusals.filter((r) => r.ms >= 20).length;
    t.true(slowRefusals <= refusals.length / 10, `${slowRefusals} of ${refusals.length} refusals took the whole SLO or more`);
    const [replica] = clipper.getModels()[0]?.versions[0]?.replicas ?? [];
    t.is((replica?.counters.admitted ?? 0) - before.admitted, answers.length, 'the replica counted every query it admitted, and only those');
    t.is((replica?.counters.refused ?? 0) - before.refused, refusals.length);
  } finally {
    await clipper.stop();
  }
});

test('a fresh replica warmed up at several sizes takes a burst of 256 concurrent queries without refusing', async (t) => {
  const clipper = await Clipper.start({ modelRepository: fixtureModels });
  try {
    // 100 ms: submitting 256 queries at once keeps this thread busy for a good part of 20 ms by itself.
    await clipper.registerApp({ name: 'sum', inputType: 'float32', inputShape: [4], defaultOutput: -1, latencySloMs: 100, cacheMaxBytes: 0 });
    await clipper.deployModel({ name: 'sum', version: '1', path: 'sum/1/model.mjs', replicas: 1 });
    await clipper.linkModel('sum', 'sum');
    const outcomes = await Promise.allSettled(Array.from({ length: 256 }, (_, i) => clipper.predict('sum', [i, 1, 1, 1])));
    const refusals = outcomes.filter((o): o is PromiseRejectedResult => o.status === 'rejected' && o.reason instanceof OverloadedError);
    if (refusals.length > 0) t.log(`first refusal: ${(refusals[0]?.reason as OverloadedError).message}`);
    t.is(refusals.length, 0, 'no query refused for want of a warmed-up estimate');
    const answered = outcomes.filter((o): o is PromiseFulfilledResult<Answer> => o.status === 'fulfilled' && !o.value.isDefault);
    t.is(answered.length, 256);
    t.deepEqual(answered[5]?.value.output, [8, 5], 'the model answered: sum and max of [5, 1, 1, 1]');
  } finally {
    await clipper.stop();
  }
});

test('--shed-status 429: an overload refusal over HTTP is 429 with Retry-After, and /metrics counts it by reason', async (t) => {
  const server = await serve({
    ...resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent', '--models', fixtureModels, '--max-event-loop-delay-ms', '0', '--shed-status', '429']),
    bundled: false,
  });
  t.teardown(() => server.close());
  await server.clipper.registerApp({ name: 'slow', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 5000 });
  await server.clipper.deployModel({ name: 'slow', version: '1', path: 'slow/1/model.mjs', replicas: 1, batching: { mode: 'none', maxQueueSize: 1 } });
  await server.clipper.linkModel('slow', 'slow');
  const post = async (input: number[]) => {
    const r = await fetch(`${server.queryUrl}/slow/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input }) });
    return { status: r.status, retryAfter: r.headers.get('retry-after'), json: (await r.json()) as { code?: string; error?: string } };
  };
  // One runs for 150 ms, one waits (maxQueueSize 1), the rest are refused.
  const results = await Promise.all([post([150, 0]), ...Array.from({ length: 4 }, (_, i) => post([1, i + 1]))]);
  const refused = results.filter((r) => r.status === 429);
  t.true(refused.length >= 2, `statuses ${results.map((r) => r.status).join(', ')}`);
  t.is(results.filter((r) => r.status === 503).length, 0, 'no 503 when 429 is asked for');
  for (const r of refused) {
    t.is(r.json.code, 'OVERLOADED');
    t.is(r.retryAfter, '1');
  }
  const metrics = await (await fetch(`${server.queryUrl}/metrics`)).text();
  t.regex(metrics, new RegExp(`clipper_refused_total\\{model="slow",version="1",replica="slow@1#0",reason="queue-full"\\} ${refused.length}`));
  t.regex(metrics, /clipper_admitted_total\{model="slow",version="1",replica="slow@1#0"\} \d+/);
  t.regex(metrics, /clipper_default_answers_total\{app="slow",reason="late"\} 0/);
  t.regex(metrics, /clipper_finish_prediction_error_seconds_bucket\{le="0",model="slow",version="1"\} \d+/);
});

test('a full replica refuses a predict request before its body is read: a malformed body gets 503, not 400, until there is room; an app with a cache reads every body', async (t) => {
  const server = await serve({
    ...resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent', '--models', fixtureModels, '--max-event-loop-delay-ms', '0']),
    bundled: false,
  });
  t.teardown(() => server.close());
  const { clipper } = server;
  await clipper.registerApp({ name: 'slow', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 5000, cacheMaxBytes: 0 });
  await clipper.registerApp({ name: 'cached', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 5000 });
  // Its policy selects no linked model (it names another), so its queries get the default output, never a refusal.
  await clipper.registerApp({ name: 'elsewhere', inputType: 'float32', inputShape: [2], defaultOutput: -1, latencySloMs: 5000, cacheMaxBytes: 0, policy: { kind: 'static', model: 'other' } });
  await clipper.deployModel({ name: 'slow', version: '1', path: 'slow/1/model.mjs', replicas: 1, batching: { mode: 'none', maxQueueSize: 1 } });
  await clipper.linkModel('slow', 'slow');
  await clipper.linkModel('cached', 'slow');
  await clipper.linkModel('elsewhere', 'slow');
  const post = async (app: string, body: string) => {
    const r = await fetch(`${server.queryUrl}/${app}/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
    return { status: r.status, retryAfter: r.headers.get('retry-after'), json: (await r.json()) as { code?: string; error?: string; output?: unknown } };
  };
  const replica = () => clipper.getModels()[0]?.versions[0]?.replicas[0];
  // One query runs for 400 ms and one waits: the queue (maxQueueSize 1) is full.
  const running = post('slow', JSON.stringify({ input: [400, 1] }));
  const waiting = post('slow', JSON.stringify({ input: [1, 2] }));
  for (let i = 0; i < 200 && (replica()?.outstanding ?? 0) < 2; i++) await new Promise((resolve) => setTimeout(resolve, 2));
  t.is(replica()?.outstanding, 2, 'one running, one queued');
  const before = { queries: clipper.getApp('slow').counters.queries, app: clipper.getApp('slow').counters.refused, replica: replica()?.counters.refusedQueueFull ?? 0 };

  const malformed = await post('slow', '{"input": [1, ');
  t.is(malformed.status, 503, 'refused before the body was parsed');
  t.is(malformed.json.code, 'OVERLOADED');
  t.regex(malformed.json.error ?? '', /replica slow@1#0 has 1 queries queued \(maxQueueSize 1\)/);
  t.is(malformed.retryAfter, '1');
  t.is((await post('slow', JSON.stringify({ input: [1, 3] }))).status, 503);
  t.is(clipper.getApp('slow').counters.refused - before.app, 2, "counted as the application's refusals");
  t.is(clipper.getApp('slow').counters.queries - before.queries, 2, "and as the application's queries");
  t.regex(await (await fetch(`${server.queryUrl}/metrics`)).text(), /clipper_requests_total\{app="slow",model="",status="refused"\} 2\n/);
  t.is((replica()?.counters.refusedQueueFull ?? 0) - before.replica, 2, "and as the replica's, by reason");
  // With a cache, an answer may need no replica; a policy that selects none answers by default: the body is
  // read, and found malformed.
  t.is((await post('cached', '{"input": [1, ')).status, 400);
  t.is((await post('elsewhere', '{"input": [1, ')).status, 400);
  const byDefault = await post('elsewhere', JSON.stringify({ input: [1, 4] }));
  t.is(byDefault.status, 200);
  t.is(byDefault.json.output, -1, 'the default output, not a refusal');

  t.deepEqual((await running).json.output, 1);
  t.deepEqual((await waiting).json.output, 2);
  // Room again: the same malformed body is read, and refused as malformed.
  const readNow = await post('slow', '{"input": [1, ');
  t.is(readNow.status, 400);
  t.is(readNow.json.code, 'INVALID_REQUEST');
});
