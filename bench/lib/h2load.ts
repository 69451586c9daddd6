/**
 * bench:http's native load generator: nghttp2's `h2load` (C; HTTP/2, and HTTP/1.1 with `--h1`), so the sweep
 * measures the servers and not Node's HTTP clients, which cost the generator 40-115 µs of CPU per call and
 * pause for young GCs (bench/grpc-isolation/). Debian: `apt-get install nghttp2-client`.
 *
 * One h2load run per rate, open loop as far as h2load goes:
 *   - `--rps` paces each client, but h2load's pacing timer fires at most every 10 ms (a client above 100/s sends
 *     bursts), and clients started together tick together. So the clients are started evenly over one tick
 *     (`-r N --rate-period 1ms`, or one every few ms at low rates), and sends arrive in groups of about
 *     rate/1000 every millisecond: as smooth as the Node generator's own 1 ms timers;
 *   - HTTP/1.1 holds one request per connection (h2load pipelines nothing when it posts a body), so HTTP/1.1
 *     gets one client per 20/s (16 to 512: a 50 ms stall still finds idle connections); HTTP/2 (gRPC) 16
 *     clients of up to 256 streams each;
 *   - h2load logs each request's start (wall clock, µs), status and duration (`--log-file`). A client whose
 *     earlier request has not come back holds the next one, so sends can slip behind the schedule (coordinated
 *     omission): each request's latency here is its duration plus how late it started against an even
 *     schedule at the offered rate (starts sorted, the k-th due at t0 + k/rate, t0 fitted to the median), as the
 *     Node generator times from the scheduled send. More than 1% of sends over 10 ms late makes a rate invalid.
 *   - h2load sees HTTP statuses only: a gRPC error is a 200 with grpc-status in its trailers, and Clipper predict's
 *     default output a 200 too. Those misses are counted on the server's side (`serverOutcomes`, read before
 *     and after each rate) and added as misses.
 *   - Its CPU per rate is read from bash's `times` after it exits (user + system of the child, 10 ms ticks).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { formatMs, formatRate } from '../../src/load/format.js';
import { LatencyRecorder } from '../../src/load/latency-recorder.js';
import { bestRate, rateLatency, LOAD_RUN_FORMAT, machineInfo, type LoadRun, type RateResult } from '../../src/load/load-run.js';

/** Where h2load is, and its version line; undefined when it is not on PATH. */
export function findH2load(): { path: string; version: string } | undefined {
  const which = spawnSync('/bin/sh', ['-c', 'command -v h2load'], { encoding: 'utf8' });
  const found = (which.stdout ?? '').trim();
  if (which.status !== 0 || found === '') return undefined;
  const version = spawnSync(found, ['--version'], { encoding: 'utf8' });
  return { path: found, version: version.stdout.trim() };
}

/** Counts the server keeps of what it answered; read before and after each rate. */
export interface ServerOutcomes {
  /** Model answers. */
  answered: number;
  /** The application's default output (Clipper predict), a miss h2load cannot see. */
  defaults: number;
  /** Queries that failed inside the server (refused, deadline, error). */
  failed: number;
  /** Rows the model ran (every replica), to check that each query ran the model. */
  rows: number;
  batches: number;
}

/** One endpoint h2load drives, with one fixed body. */
export interface H2loadTarget {
  /** The server's origin, `http://127.0.0.1:PORT`. */
  origin: string;
  path: string;
  body: Buffer;
  headers: Record<string, string>;
  /** HTTP/2 (gRPC) rather than HTTP/1.1. */
  h2: boolean;
  /** The server's own counts (clipper-ts in this process): misses h2load cannot see (gRPC, defaults). */
  serverOutcomes?: () => ServerOutcomes;
  /** The server's process, for its CPU per rate: 'self' (clipper-ts in the bench's process) or a child's pid. */
  serverProcess?: 'self' | number;
}

export interface H2loadSettings {
  rates: number[];
  durationS: number;
  warmupS: number;
  sloMs: number;
  lateThresholdMs: number;
  maxLateShare: number;
  stopAfterMisses: number;
  retries: number;
}

/** How h2load is told to offer a rate: clients, each one's rate, and how they are started. */
export interface ClientPlan {
  clients: number;
  /** Requests per second per client (`--rps`). */
  perClient: number;
  /** Clients started per period (`-r`), and the period (`--rate-period`, ms). */
  startPerPeriod: number;
  periodMs: number;
  /** Streams per client (`-m`). */
  streams: number;
}

/** HTTP/1.1: a client per 20/s, so a 50 ms stall of the server still finds idle connections; 16 to 512. */
const H1_RATE_PER_CLIENT = 20;
const H1_MIN_CLIENTS = 16;
const H1_MAX_CLIENTS = 512;
const H2_CLIENTS = 16;
const H2_STREAMS = 256;
/** h2load's pacing timer never fires more often than every 10 ms. */
const TICK_MS = 10;

/**
 * Clients for a rate, each paced at rate / clients, started evenly over one pacing tick (h2load starts `-r` of
 * them every `--rate-period`, whole milliseconds) so that their ticks interleave.
 */
export function planClients(rate: number, h2: boolean): ClientPlan {
  const clients = h2 ? H2_CLIENTS : Math.min(H1_MAX_CLIENTS, Math.max(H1_MIN_CLIENTS, Math.ceil(rate / H1_RATE_PER_CLIENT)));
  const perClient = rate / clients;
  const tickMs = Math.max(TICK_MS, 1000 / perClient);
  const spread = clients >= tickMs ? { startPerPeriod: Math.ceil(clients / tickMs), periodMs: 1 } : { startPerPeriod: 1, periodMs: Math.max(1, Math.round(tickMs / clients)) };
  return { clients, perClient, ...spread, streams: h2 ? H2_STREAMS : 1 };
}

/** One line of h2load's `--log-file`: start (µs since the epoch), HTTP status (-1: the stream failed), duration (µs). */
export interface LogEntry {
  startUs: number;
  status: number;
  durationUs: number;
}

export function parseLog(text: string): LogEntry[] {
  const entries: LogEntry[] = [];
  for (const line of text.split('\n')) {
    if (line.length === 0) continue;
    const [start, status, duration] = line.split('\t');
    const entry = { startUs: Number(start), status: Number(status), durationUs: Number(duration) };
    if (Number.isFinite(entry.startUs) && Number.isFinite(entry.status) && Number.isFinite(entry.durationUs)) entries.push(entry);
  }
  return entries;
}

/** What one rate's log says, before the server's own counts are added. */
export interface LogAnalysis {
  /** Per request, in start order: ms from its scheduled send to its end, and its status. */
  latencies: { ms: number; status: number }[];
  late: number;
  maxLateMs: number;
  /** First start to last end, s. */
  spanS: number;
}

/**
 * Latencies from the schedule: starts sorted, the k-th due at t0 + k / rate, t0 the median of start_k - k / rate
 * (so the jitter of the 1 ms start groups centres on zero and only sends held behind earlier ones come out late).
 */
export function analyseLog(entries: readonly LogEntry[], rate: number, lateThresholdMs: number): LogAnalysis {
  const sorted = [...entries].sort((a, b) => a.startUs - b.startUs);
  if (sorted.length === 0) return { latencies: [], late: 0, maxLateMs: 0, spanS: 0 };
  const gapUs = 1e6 / rate;
  const offsets = sorted.map((e, k) => e.startUs - k * gapUs).sort((a, b) => a - b);
  const t0 = offsets[Math.floor(offsets.length / 2)] as number;
  let late = 0;
  let maxLateMs = 0;
  let lastEnd = 0;
  const latencies = sorted.map((e, k) => {
    const lateMs = Math.max(0, (e.startUs - (t0 + k * gapUs)) / 1000);
    if (lateMs > lateThresholdMs) late++;
    maxLateMs = Math.max(maxLateMs, lateMs);
    lastEnd = Math.max(lastEnd, e.startUs + e.durationUs);
    return { ms: e.durationUs / 1000 + lateMs, status: e.status };
  });
  return { latencies, late, maxLateMs, spanS: (lastEnd - (sorted[0] as LogEntry).startUs) / 1e6 };
}

/**
 * CPU seconds (user + system) so far of a process (all its threads), or of one thread with `tid` (the main
 * thread's is the pid), from /proc; undefined when it is gone.
 */
export function processCpuSeconds(pid: number, tid?: number): number | undefined {
  try {
    const stat = readFileSync(tid === undefined ? `/proc/${pid}/stat` : `/proc/${pid}/task/${tid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces), from field 3: utime is field 14, stime 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return undefined;
  }
}

/** What a rate measured besides RateResult's fields. */
export interface H2loadRateExtra {
  generator: 'h2load';
  plan: ClientPlan;
  /** Server CPU over the rate, cores (its whole process: replicas' threads included). */
  serverCpu: number | null;
  /**
   * clipper-ts in this process: its main thread's event-loop utilisation over the rate (0-1, wall time in
   * callbacks: on a crowded machine it includes time the thread was runnable but not running).
   */
  serverMainThreadBusy: number | null;
  /** clipper-ts in this process: its main thread's own CPU over the rate, cores (from /proc). */
  serverMainThreadCpu: number | null;
  /** Model rows run per model answer (1: each answer ran the model; above 1: admitted queries ran but answered late or failed). */
  rowsPerAnswer: number | null;
  /** HTTP statuses h2load saw, and how many of each. */
  statuses: Record<string, number>;
  /** Misses only the server could see (gRPC errors, default outputs). */
  serverSeenMisses: number;
}

export type H2loadRateResult = RateResult & H2loadRateExtra;

interface StepOutcome {
  result: Omit<H2loadRateResult, 'attempts'>;
  stderr: string;
}

/** Runs h2load once: `count` requests at `rate`, and reads its log. */
async function runStep(h2load: string, target: H2loadTarget, rate: number, seconds: number, settings: H2loadSettings, dir: string): Promise<StepOutcome> {
  const count = Math.max(100, Math.round(rate * seconds));
  const plan = planClients(rate, target.h2);
  const logFile = path.join(dir, 'requests.log');
  rmSync(logFile, { force: true });
  const args = [
    '-n',
    String(count),
    '-c',
    String(plan.clients),
    '-r',
    String(plan.startPerPeriod),
    '--rate-period',
    `${plan.periodMs}ms`,
    '--rps',
    String(plan.perClient),
    '-m',
    String(plan.streams),
    '-d',
    path.join(dir, 'body'),
    ...Object.entries(target.headers).flatMap(([k, v]) => ['-H', `${k}: ${v}`]),
    ...(target.h2 ? [] : ['--h1']),
    '--log-file',
    logFile,
    `${target.origin}${target.path}`,
  ];
  const before = target.serverOutcomes?.();
  const serverCpuBefore = serverCpu(target);
  const eluBefore = target.serverProcess === 'self' ? performance.eventLoopUtilization() : undefined;
  const mainCpuBefore = target.serverProcess === 'self' ? processCpuSeconds(process.pid, process.pid) : undefined;
  const started = performance.now();
  // bash's `times` prints, after h2load exits, its children's user and system CPU (second line).
  const child = spawn('/bin/bash', ['-c', '"$0" "$@" > /dev/null; code=$?; times; exit $code', h2load, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  // A server that stops answering would hold h2load forever: the rate ends 30 s past its schedule.
  const guard = setTimeout(() => child.kill('SIGKILL'), (seconds + 30) * 1000);
  const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
  clearTimeout(guard);
  const wallS = (performance.now() - started) / 1000;
  const elu = eluBefore === undefined ? undefined : performance.eventLoopUtilization(eluBefore);
  const mainCpuAfter = target.serverProcess === 'self' ? processCpuSeconds(process.pid, process.pid) : undefined;
  const serverCpuAfter = serverCpu(target);
  const after = target.serverOutcomes?.();
  let entries: LogEntry[] = [];
  try {
    entries = parseLog(readFileSync(logFile, 'utf8'));
  } catch {
    // No log: h2load failed before sending; every request counts as an error.
  }
  const analysis = analyseLog(entries, rate, settings.lateThresholdMs);
  const generatorCpuS = parseTimes(stdout);
  const durationS = analysis.spanS > 0 ? analysis.spanS : wallS;
  const latency = new LatencyRecorder();
  const admitted = new LatencyRecorder();
  const statuses: Record<string, number> = {};
  let ok = 0;
  let refused = 0;
  let errors = 0;
  let withinSlo = 0;
  const okLatencies: number[] = [];
  for (const { ms, status } of analysis.latencies) {
    statuses[String(status)] = (statuses[String(status)] ?? 0) + 1;
    if (status === 200) {
      ok++;
      okLatencies.push(ms);
    } else if (status === 503 || status === 429) refused++;
    else errors++;
  }
  errors += count - analysis.latencies.length;
  // Misses h2load cannot see: the server's failed queries beyond the non-200 answers h2load saw (gRPC errors
  // come back as 200), and default outputs. They are taken off the 200s, the slowest first: which of the 200s
  // they were is unknown, and counting the slowest as misses is the kinder choice for the server.
  const delta = before === undefined || after === undefined ? undefined : diff(before, after);
  const defaults = Math.min(ok, delta?.defaults ?? 0);
  const hiddenFailed = delta === undefined ? 0 : Math.max(0, Math.min(ok - defaults, delta.failed - refused - errors));
  const serverSeenMisses = defaults + hiddenFailed;
  okLatencies.sort((a, b) => a - b);
  const answered = okLatencies.slice(0, okLatencies.length - serverSeenMisses);
  for (const ms of answered) {
    latency.record(ms);
    admitted.record(ms);
    if (ms <= settings.sloMs) withinSlo++;
  }
  for (const ms of okLatencies.slice(answered.length, answered.length + defaults)) admitted.record(ms);
  for (let i = 0; i < count - answered.length; i++) latency.recordMiss();
  const summary = latency.summary();
  const sent = analysis.latencies.length;
  const rows = delta === undefined ? null : delta.rows;
  return {
    stderr: code === 0 ? '' : stderr.trim(),
    result: {
      offered: rate,
      achieved: durationS > 0 ? analysis.latencies.length / durationS : 0,
      goodput: durationS > 0 ? withinSlo / durationS : 0,
      sent,
      ok: answered.length,
      defaults,
      refused,
      errors: errors + hiddenFailed,
      late: analysis.late,
      maxLateMs: analysis.maxLateMs,
      latency: rateLatency(summary),
      admittedLatency: rateLatency(admitted.summary()),
      sloAttainment: withinSlo / count,
      meanBatch: delta !== undefined && delta.batches > 0 ? delta.rows / delta.batches : null,
      cacheHitRatio: null,
      meetsSlo: summary.p99 <= settings.sloMs,
      valid: code === 0 && sent > 0 && analysis.late / sent <= settings.maxLateShare,
      durationS,
      ...(generatorCpuS === undefined ? {} : { generatorCpu: generatorCpuS / wallS }),
      generator: 'h2load',
      plan,
      serverCpu: serverCpuBefore === undefined || serverCpuAfter === undefined ? null : (serverCpuAfter - serverCpuBefore) / wallS,
      serverMainThreadBusy: elu === undefined ? null : elu.utilization,
      serverMainThreadCpu: mainCpuBefore === undefined || mainCpuAfter === undefined ? null : (mainCpuAfter - mainCpuBefore) / wallS,
      rowsPerAnswer: rows === null || answered.length === 0 ? null : rows / answered.length,
      statuses,
      serverSeenMisses,
    },
  };
}

function serverCpu(target: H2loadTarget): number | undefined {
  if (target.serverProcess === undefined) return undefined;
  if (target.serverProcess === 'self') {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1e6;
  }
  return processCpuSeconds(target.serverProcess);
}

function diff(a: ServerOutcomes, b: ServerOutcomes): ServerOutcomes {
  return { answered: b.answered - a.answered, defaults: b.defaults - a.defaults, failed: b.failed - a.failed, rows: b.rows - a.rows, batches: b.batches - a.batches };
}

/** The children's CPU seconds from bash's `times` (its second line: `0m1.230s 0m0.450s`). */
export function parseTimes(text: string): number | undefined {
  const lines = text.trim().split('\n');
  const children = lines[lines.length - 1];
  if (lines.length < 2 || children === undefined) return undefined;
  let total = 0;
  for (const [, m, s] of children.matchAll(/(\d+)m([\d.]+)s/g)) total += Number(m) * 60 + Number(s);
  return total;
}


/**
 * A sweep with h2load: a warm-up at the first rate, then each rate once (and again when it misses, as the Node
 * generator's sweep does), until `stopAfterMisses` in a row miss. Returns the run in the load-test format.
 */
export async function h2loadSweep(h2load: string, label: string, target: H2loadTarget, settings: H2loadSettings, log: (line: string) => void): Promise<LoadRun> {
  const startedAt = new Date().toISOString();
  const loadAverage = os.loadavg();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'bench-h2load-'));
  writeFileSync(path.join(dir, 'body'), target.body);
  log(`${label} (h2load, ${target.h2 ? 'HTTP/2' : 'HTTP/1.1'}, one ${target.body.length}-byte body; load average ${loadAverage[0]?.toFixed(2)}):`);
  const rates: RateResult[] = [];
  try {
    if (settings.warmupS > 0) await runStep(h2load, target, settings.rates[0] as number, settings.warmupS, settings, dir);
    let misses = 0;
    for (const rate of settings.rates) {
      let result: H2loadRateResult | undefined;
      for (let attempt = 1; attempt <= settings.retries + 1; attempt++) {
        const step = await runStep(h2load, target, rate, settings.durationS, settings, dir);
        if (step.stderr !== '') log(`  h2load: ${step.stderr.split('\n').slice(-3).join(' | ')}`);
        result = { ...step.result, attempts: attempt };
        if (result.meetsSlo && result.valid) break;
      }
      const r = result as H2loadRateResult;
      rates.push(r);
      log(
        `  offered ${formatRate(r.offered).padStart(7)}/s  achieved ${formatRate(r.achieved).padStart(7)}/s  p50 ${formatMs(r.latency.p50).padStart(6)}  p99 ${formatMs(r.latency.p99).padStart(6)} ms  ` +
          `refused ${r.refused}  errors ${r.errors}  defaults ${r.defaults}  late ${r.late}  batch ${r.meanBatch === null ? '-' : r.meanBatch.toFixed(1)}  ` +
          `rows/answer ${r.rowsPerAnswer === null ? '-' : r.rowsPerAnswer.toFixed(2)}  h2load ${((r.generatorCpu ?? 0) * 100).toFixed(0)}% cpu  ` +
          `server ${r.serverCpu === null ? '-' : `${(r.serverCpu * 100).toFixed(0)}%`} cpu` +
          `${r.serverMainThreadBusy === null ? '' : ` (main thread ${(r.serverMainThreadBusy * 100).toFixed(0)}% busy, ${((r.serverMainThreadCpu ?? 0) * 100).toFixed(0)}% cpu)`}  ` +
          `${!r.valid ? 'INVALID' : r.meetsSlo ? 'ok' : 'missed'}${r.attempts > 1 ? ' (2nd try)' : ''}`,
      );
      misses = r.meetsSlo && r.valid ? 0 : misses + 1;
      if (settings.stopAfterMisses > 0 && misses >= settings.stopAfterMisses) break;
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  return {
    format: LOAD_RUN_FORMAT,
    label,
    startedAt,
    target: `${target.origin}${target.path}`,
    settings: { ...settings, generator: 'h2load', h2: target.h2, bodyBytes: target.body.length, headers: target.headers, loadAverage },
    machine: machineInfo(),
    rates,
    timeline: [],
    best: bestRate(rates),
  };
}
