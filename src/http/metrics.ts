import { constants, PerformanceObserver } from 'node:perf_hooks';
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Answer, AppInfo, Clipper, ReplicaStatus } from '../index.js';

/** Latency buckets in seconds: dense around Clipper-style SLOs (5-50 ms). */
const latencyBuckets = [0.0005, 0.001, 0.002, 0.005, 0.01, 0.015, 0.02, 0.03, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
const batchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512];
/** GC pause buckets in seconds: a scavenge takes well under a millisecond, a mark-compact of a big heap tens. */
const gcBuckets = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1];
/** Actual minus predicted finish, seconds: negative when a query was answered sooner than admission promised. */
const finishErrorBuckets = [-0.02, -0.01, -0.005, -0.002, -0.001, 0, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05];

/** How a request ended, the `status` label. */
export type RequestStatus = 'success' | 'default' | 'refused' | 'invalid' | 'error';

/**
 * Prometheus metrics (prom-client), named in the spirit of Triton's `nv_inference_*`: requests by
 * application, model and status; end-to-end, queue and compute latency; batch sizes and each replica's
 * current AIMD limit; cache hits and misses; default answers; replica restarts.
 */
export class ServerMetrics {
  readonly registry = new Registry();
  readonly #requests: Counter<'app' | 'model' | 'status'>;
  readonly #requestSeconds: Histogram<'app' | 'protocol'>;
  readonly #queueSeconds: Histogram<'model' | 'version'>;
  readonly #computeSeconds: Histogram<'model' | 'version'>;
  readonly #batchSize: Histogram<'model' | 'version'>;
  readonly #restarts: Counter<'replica' | 'event'>;
  readonly #finishError: Histogram<'model' | 'version'>;
  readonly #unsubscribe: (() => void)[] = [];
  /**
   * Queries the HTTP edge refused before any replica saw them, by reason: `event-loop-lag` (the event loop lagged
   * and the queues confirmed the system is behind). In `clipper_refused_total` with no model, version or replica.
   */
  readonly edgeRefusals = { 'event-loop-lag': 0 };

  constructor(clipper: Clipper) {
    const registers = [this.registry];
    this.#requests = new Counter({ name: 'clipper_requests_total', help: 'Queries by application (or OIP model), answering model and status', labelNames: ['app', 'model', 'status'], registers });
    this.#requestSeconds = new Histogram({ name: 'clipper_request_duration_seconds', help: 'End-to-end query latency inside the server', labelNames: ['app', 'protocol'], buckets: latencyBuckets, registers });
    this.#queueSeconds = new Histogram({ name: 'clipper_queue_duration_seconds', help: 'Time a query waited in its replica queue', labelNames: ['model', 'version'], buckets: latencyBuckets, registers });
    this.#computeSeconds = new Histogram({ name: 'clipper_compute_duration_seconds', help: 'Batch time inside the model', labelNames: ['model', 'version'], buckets: latencyBuckets, registers });
    this.#batchSize = new Histogram({ name: 'clipper_batch_size', help: 'Rows per batch', labelNames: ['model', 'version'], buckets: batchBuckets, registers });
    this.#restarts = new Counter({ name: 'clipper_replica_events_total', help: 'Supervision events per replica: restartScheduled, restarted, gaveUp', labelNames: ['replica', 'event'], registers });
    this.#finishError = new Histogram({
      name: 'clipper_finish_prediction_error_seconds',
      help: "Per admitted query, its replica's actual finish minus the finish admission predicted (negative: sooner)",
      labelNames: ['model', 'version'],
      buckets: finishErrorBuckets,
      registers,
    });
    // Admission control (issue 13): what each replica let in and what it turned away, and why.
    const replicaCounter = (name: string, help: string, labels: string[], read: (set: (labels: Record<string, string>, value: number) => void, replica: ReplicaStatus) => void): void => {
      new Counter({
        name,
        help,
        labelNames: ['model', 'version', ...labels],
        registers,
        collect() {
          this.reset();
          for (const m of clipper.getModels()) {
            for (const v of m.versions) for (const r of v.replicas) read((l, value) => this.inc({ model: m.name, version: v.version, ...l }, value), r);
          }
        },
      });
    };
    replicaCounter('clipper_cancelled_total', 'Queued queries dropped unrun because their caller went away (HTTP disconnect, gRPC cancel)', ['replica'], (set, r) =>
      set({ replica: r.name }, r.counters.cancelled),
    );
    replicaCounter('clipper_admitted_total', 'Queries admitted by a replica', ['replica'], (set, r) => set({ replica: r.name }, r.counters.admitted));
    const edgeRefusals = this.edgeRefusals;
    new Counter({
      name: 'clipper_refused_total',
      help:
        'Queries refused (503): by a replica at admission (queue-full at maxQueueSize, too-late when they would miss their deadline, too-large), ' +
        'or by the HTTP edge before any replica (event-loop-lag, no model, version or replica)',
      labelNames: ['model', 'version', 'replica', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const [reason, n] of Object.entries(edgeRefusals)) this.inc({ model: '', version: '', replica: '', reason }, n);
        for (const m of clipper.getModels()) {
          for (const v of m.versions) {
            for (const r of v.replicas) {
              const labels = { model: m.name, version: v.version, replica: r.name };
              this.inc({ ...labels, reason: 'queue-full' }, r.counters.refusedQueueFull);
              this.inc({ ...labels, reason: 'too-late' }, r.counters.refused - r.counters.refusedQueueFull - r.counters.refusedTooLarge);
              this.inc({ ...labels, reason: 'too-large' }, r.counters.refusedTooLarge);
            }
          }
        }
      },
    });
    new Gauge({
      name: 'clipper_replica_batch_limit',
      help: "Each replica's current AIMD batch limit",
      labelNames: ['model', 'version', 'replica'],
      registers,
      collect() {
        this.reset();
        for (const m of clipper.getModels()) {
          for (const v of m.versions) for (const r of v.replicas) this.set({ model: m.name, version: v.version, replica: r.name }, r.batchLimit);
        }
      },
    });
    new Gauge({
      name: 'clipper_replica_ready',
      help: '1 when a replica takes queries',
      labelNames: ['model', 'version', 'replica'],
      registers,
      collect() {
        this.reset();
        for (const m of clipper.getModels()) {
          for (const v of m.versions) for (const r of v.replicas) this.set({ model: m.name, version: v.version, replica: r.name }, r.ready ? 1 : 0);
        }
      },
    });
    new Counter({
      name: 'clipper_hedges_total',
      help: 'Speculative duplicates (hedged requests): sent, and won (the duplicate answered first)',
      labelNames: ['model', 'version', 'outcome'],
      registers,
      collect() {
        this.reset();
        for (const m of clipper.getModels()) {
          for (const v of m.versions) {
            this.inc({ model: m.name, version: v.version, outcome: 'sent' }, v.hedges.sent);
            this.inc({ model: m.name, version: v.version, outcome: 'won' }, v.hedges.won);
          }
        }
      },
    });
    const appCounter = (name: string, help: string, read: (a: AppInfo) => number): void => {
      new Counter({
        name,
        help,
        labelNames: ['app'],
        registers,
        collect() {
          this.reset();
          for (const app of clipper.getApps()) this.inc({ app: app.name }, read(app));
        },
      });
    };
    appCounter('clipper_cache_hits_total', 'Prediction cache hits', (a) => a.cache.hits);
    appCounter('clipper_cache_misses_total', 'Prediction cache misses (evaluations started)', (a) => a.cache.misses);
    appCounter('clipper_cache_shared_total', 'Queries that joined an identical evaluation in flight', (a) => a.cache.shared);
    const appGauge = (name: string, help: string, read: (a: AppInfo) => number): void => {
      new Gauge({
        name,
        help,
        labelNames: ['app'],
        registers,
        collect() {
          this.reset();
          for (const app of clipper.getApps()) this.set({ app: app.name }, read(app));
        },
      });
    };
    appGauge('clipper_cache_entries', 'Predictions held in the cache', (a) => a.cache.entries);
    appGauge('clipper_cache_held_bytes', "Bytes the cache's slabs and index really hold (bounded by cacheMaxBytes)", (a) => a.cache.heldBytes);
    // Pauses of the main thread's garbage collector, from perf_hooks' GC entries (issue 15: a long pause
    // stalls every query in flight).
    const gcPause = new Histogram({ name: 'clipper_gc_pause_seconds', help: 'Garbage collection pauses of the main thread', labelNames: ['kind'], buckets: gcBuckets, registers });
    const gcObserver = new PerformanceObserver((list) => {
      for (const entry of list.getEntries()) gcPause.observe({ kind: gcKind((entry as { detail?: { kind?: number } }).detail?.kind) }, entry.duration / 1000);
    });
    gcObserver.observe({ entryTypes: ['gc'] });
    this.#unsubscribe.push(() => gcObserver.disconnect());
    new Counter({
      name: 'clipper_default_answers_total',
      help: 'Queries answered with the default output, by reason: late (admitted, then missed the deadline), noModel (failed, or no model to ask), lowConfidence, policyError',
      labelNames: ['app', 'reason'],
      registers,
      collect() {
        this.reset();
        for (const { name: app, counters: c } of clipper.getApps()) {
          this.inc({ app, reason: 'late' }, c.lateDefaults);
          this.inc({ app, reason: 'lowConfidence' }, c.lowConfidence);
          this.inc({ app, reason: 'policyError' }, c.policyErrors);
          this.inc({ app, reason: 'noModel' }, Math.max(0, c.defaults - c.lateDefaults - c.lowConfidence - c.policyErrors));
        }
      },
    });
    this.#unsubscribe.push(
      clipper.onBatch((b) => {
        this.#batchSize.observe({ model: b.model, version: b.version }, b.size);
        this.#computeSeconds.observe({ model: b.model, version: b.version }, b.computeMs / 1000);
        for (const ms of b.finishErrorsMs ?? []) this.#finishError.observe({ model: b.model, version: b.version }, ms / 1000);
      }),
      clipper.onSupervisionEvent((e) => this.#restarts.inc({ replica: e.child, event: e.type })),
    );
  }

  /** Records one answered Clipper-REST query. */
  answered(app: string, answer: Answer): void {
    this.#requests.inc({ app, model: answer.model ?? '', status: answer.isDefault ? 'default' : 'success' });
    this.#requestSeconds.observe({ app, protocol: 'clipper' }, answer.latencyMs / 1000);
    if (answer.timings !== undefined && answer.model !== undefined) {
      this.#queueSeconds.observe({ model: answer.model, version: answer.version ?? '' }, answer.timings.queueMs / 1000);
    }
  }

  /** Records one request that did not get a model's answer. */
  failed(app: string, status: RequestStatus, model = ''): void {
    this.#requests.inc({ app, model, status });
  }

  /** Records one OIP infer request. */
  inferred(model: string, seconds: number): void {
    this.#requests.inc({ app: '', model, status: 'success' });
    this.#requestSeconds.observe({ app: '', protocol: 'oip' }, seconds);
  }

  close(): void {
    for (const off of this.#unsubscribe) off();
  }
}

/** perf_hooks' GC kind (`constants.NODE_PERFORMANCE_GC_*`: minor 1, major 4, incremental 8, weakcb 16), as a label. */
export function gcKind(kind: number | undefined): string {
  switch (kind) {
    case constants.NODE_PERFORMANCE_GC_MINOR:
      return 'minor';
    case constants.NODE_PERFORMANCE_GC_MAJOR:
      return 'major';
    case constants.NODE_PERFORMANCE_GC_INCREMENTAL:
      return 'incremental';
    case constants.NODE_PERFORMANCE_GC_WEAKCB:
      return 'weakcb';
    default:
      return 'other';
  }
}
