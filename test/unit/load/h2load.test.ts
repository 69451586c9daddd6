import test from 'ava';
import { analyseLog, parseLog, parseTimes, planClients, type LogEntry } from '../../../bench/lib/h2load.js';

test('parseLog reads start, status and duration, -1 for failed streams, and skips blank or broken lines', (t) => {
  const entries = parseLog('1700000000000000\t200\t1500\n\n1700000000001000\t-1\t20\nnot a line\n1700000000002000\t503\t300\n');
  t.deepEqual(entries, [
    { startUs: 1700000000000000, status: 200, durationUs: 1500 },
    { startUs: 1700000000001000, status: -1, durationUs: 20 },
    { startUs: 1700000000002000, status: 503, durationUs: 300 },
  ]);
});

/** `count` requests started every 1e6/rate µs from `t0`, each taking `durationUs`. */
function even(count: number, rate: number, durationUs: number, t0 = 1e15): LogEntry[] {
  return Array.from({ length: count }, (_, k) => ({ startUs: t0 + Math.round((k * 1e6) / rate), status: 200, durationUs }));
}

test('analyseLog: sends on schedule are not late, and latency is their duration', (t) => {
  const a = analyseLog(even(1000, 1000, 2000).reverse(), 1000, 10);
  t.is(a.late, 0);
  t.true(a.maxLateMs < 0.01);
  t.is(a.latencies.length, 1000);
  t.true(a.latencies.every((l) => Math.abs(l.ms - 2) < 0.01 && l.status === 200));
  // First start to last end: 999 gaps of 1 ms, plus the last request's 2 ms.
  t.true(Math.abs(a.spanS - 1.001) < 1e-6);
});

test('analyseLog: sends held back behind the schedule count as late and their wait is added to their latency', (t) => {
  // 1000/s for 1 s, but the last 100 sends all went out at once, 100 ms after the first of them was due.
  const entries = even(1000, 1000, 1000);
  const held = (entries[999] as LogEntry).startUs;
  for (let k = 900; k < 1000; k++) (entries[k] as LogEntry).startUs = held;
  const a = analyseLog(entries, 1000, 10);
  // Send k was due at 900 + (k - 900) ms and went at 999 ms: more than 10 ms late for k < 989.
  t.is(a.late, 89);
  t.true(Math.abs(a.maxLateMs - 99) < 0.01);
  t.true(Math.abs((a.latencies[900] as { ms: number }).ms - 100) < 0.01);
  t.true(Math.abs((a.latencies[999] as { ms: number }).ms - 1) < 0.01);
});

test('analyseLog: a burst of sends ahead of the schedule is not late (t0 is the median offset)', (t) => {
  // Groups of 10 sends every 10 ms: 1000/s on average, each group up to 9 ms ahead of an even schedule.
  const entries = Array.from({ length: 1000 }, (_, k) => ({ startUs: 1e15 + Math.floor(k / 10) * 10_000, status: 200, durationUs: 500 }));
  const a = analyseLog(entries, 1000, 10);
  t.is(a.late, 0);
  t.true(a.maxLateMs <= 5);
});

test('planClients: HTTP/1.1 gets a client per 20/s within 16-512, HTTP/2 16 clients of 256 streams, started over one pacing tick', (t) => {
  const low = planClients(500, false);
  t.deepEqual(low, { clients: 25, perClient: 20, startPerPeriod: 1, periodMs: 2, streams: 1 });
  const mid = planClients(5000, false);
  t.deepEqual(mid, { clients: 250, perClient: 20, startPerPeriod: 5, periodMs: 1, streams: 1 });
  const high = planClients(28_000, false);
  t.is(high.clients, 512);
  t.is(high.clients * high.perClient, 28_000);
  // Its tick is 1000 / 54.7 = 18.3 ms: 28 clients a millisecond start all 512 within it.
  t.is(high.startPerPeriod, 28);
  const grpc = planClients(20_000, true);
  t.deepEqual(grpc, { clients: 16, perClient: 1250, startPerPeriod: 2, periodMs: 1, streams: 256 });
  for (const rate of [100, 500, 750, 1000, 3333, 12_800, 80_000]) {
    for (const h2 of [false, true]) {
      const p = planClients(rate, h2);
      t.true(Math.abs(p.clients * p.perClient - rate) < 1e-6, `${rate}/s is offered in full`);
      // All clients start within one tick of their pacing timer (at least 10 ms, 1/perClient when longer).
      const tickMs = Math.max(10, 1000 / p.perClient);
      t.true((Math.ceil(p.clients / p.startPerPeriod) - 1) * p.periodMs < tickMs + p.periodMs, `${rate}/s: clients start within one tick`);
    }
  }
});

test("parseTimes sums the children's user and system CPU from bash's times", (t) => {
  t.is(parseTimes('0m0.007s 0m0.004s\n0m1.250s 0m0.500s\n'), 1.75);
  t.is(parseTimes('1m2.000s 0m0.000s\n2m0.100s 0m0.400s'), 120.5);
  t.is(parseTimes(''), undefined);
});
