import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Registry } from 'prom-client';
import { projectRoot, RouteNotFoundError, type Clipper } from '../../index.js';
import { statusFrame, type HistogramReading, type Reading, type StatusFrame } from './status-frame.js';
import type { ClusterSnapshot } from '../control/cluster-view.js';

/** The page's own files (HTML, script, style), read from the source tree at start. */
const staticDir = path.join(projectRoot, 'src', 'http', 'status', 'static');
const require = createRequire(import.meta.url);

/** Files the page loads: its own, and the chart libraries from the server's own dependencies (no CDN). */
function assetFiles(): Record<string, { file: string; type: string }> {
  const js = 'text/javascript; charset=utf-8';
  const packageFile = (pkg: string, file: string): string => {
    // Walk up from the package's entry point to its root (some packages do not export package.json).
    let dir = path.dirname(require.resolve(pkg));
    while (path.basename(dir) !== pkg && path.dirname(dir) !== dir) dir = path.dirname(dir);
    return path.join(dir, file);
  };
  return {
    'vega.min.js': { file: packageFile('vega', 'build/vega.min.js'), type: js },
    'vega-lite.min.js': { file: packageFile('vega-lite', 'build/vega-lite.min.js'), type: js },
    'vega-embed.min.js': { file: packageFile('vega-embed', 'build/vega-embed.min.js'), type: js },
    'status.js': { file: path.join(staticDir, 'status.js'), type: js },
    'status.css': { file: path.join(staticDir, 'status.css'), type: 'text/css; charset=utf-8' },
  };
}

export interface StatusPageOptions {
  clipper: Clipper;
  /** The query server's metrics, for latency percentiles. */
  registry: Registry | undefined;
  /** The admin token; when set, a browser signs in with a form that sets an HttpOnly session cookie. */
  token: string | undefined;
  /** Compares a token a user typed with the admin token in constant time. */
  isToken(given: string): boolean;
  /** Time between frames (ms); at least 1000. */
  intervalMs?: number;
  /** Frames kept for a newly opened page (default 300: five minutes at one a second). */
  historyFrames?: number;
  /** Over NATS: the cluster's frontends and containers as last read (undefined: not a cluster). */
  cluster?: () => ClusterSnapshot | undefined;
}

/** A supervision event as the page lists it. */
interface EventRow {
  at: number;
  child: string;
  type: string;
  detail: string;
}

const sessionCookie = 'clipper_session';

/**
 * The live status page on the admin port: `GET /` (the page, or a sign-in form when a token is set),
 * `GET /status/events` (Server-Sent Events: one frame a second, only while a page is open),
 * `GET /status/snapshot` (the latest frame as JSON) and the page's assets. Returns the check the admin
 * port's auth hook uses to accept a signed-in browser's cookie.
 */
export function registerStatusPage(app: FastifyInstance, options: StatusPageOptions): { signedIn(request: FastifyRequest): boolean; isPublic(request: FastifyRequest): boolean } {
  const { clipper } = options;
  const intervalMs = Math.max(1000, options.intervalMs ?? 1000);
  const keep = options.historyFrames ?? 300;
  const assets = assetFiles();
  const page = readFileSync(path.join(staticDir, 'index.html'), 'utf8');
  const login = readFileSync(path.join(staticDir, 'login.html'), 'utf8');
  const sessions = new Set<string>();
  const events: EventRow[] = [];
  const clients = new Set<FastifyReply>();
  let history: StatusFrame[] = [];
  let previous: Reading | undefined;
  let timer: NodeJS.Timeout | undefined;

  // Supervision events are pushed to us (no polling); keep the latest for the page.
  const unsubscribe = clipper.onSupervisionEvent((e) => {
    const detail = e.type === 'restartScheduled' ? `restart in ${e.delayMs} ms (attempt ${e.attempt})` : e.type === 'gaveUp' ? `gave up after ${e.failuresInWindow} failures` : 'restarted';
    events.push({ at: Date.now(), child: e.child, type: e.type, detail });
    if (events.length > 50) events.shift();
  });
  app.addHook('onClose', async () => {
    unsubscribe();
    stop();
  });

  const latency = async (): Promise<Map<string, HistogramReading>> => {
    const out = new Map<string, HistogramReading>();
    const metric = options.registry?.getSingleMetric('clipper_request_duration_seconds');
    if (metric === undefined) return out;
    const { values } = await metric.get();
    for (const v of values) {
      // A histogram's values carry their series name (_bucket, _sum, _count); only the cumulative buckets matter.
      if ((v as { metricName?: string }).metricName !== 'clipper_request_duration_seconds_bucket' || v.labels.protocol !== 'clipper') continue;
      const name = String(v.labels.app);
      const h = out.get(name) ?? { bounds: [], counts: [] };
      (h.bounds as number[]).push(v.labels.le === '+Inf' ? Number.POSITIVE_INFINITY : Number(v.labels.le));
      (h.counts as number[]).push(v.value);
      out.set(name, h);
    }
    return out;
  };

  const read = async (): Promise<Reading> => {
    const histograms = await latency();
    return {
      at: Date.now(),
      apps: clipper.getApps().map((a) => ({
        name: a.name,
        sloMs: a.latencySloMs,
        linkedModels: a.linkedModels,
        policy: a.policy,
        policyState: clipper.getPolicyState(a.name),
        queries: a.counters.queries,
        answered: a.counters.answered,
        defaults: a.counters.defaults,
        refused: a.counters.refused,
        cacheHits: a.cache.hits,
        cacheMisses: a.cache.misses,
        latency: histograms.get(a.name),
      })),
      models: clipper.getModels().map((m) => ({
        name: m.name,
        currentVersion: m.currentVersion,
        linkedApps: m.linkedApps,
        versions: m.versions.map((v) => ({
          version: v.version,
          replicas: v.replicas.map((r) => ({
            name: r.name,
            status: r.status,
            ready: r.ready,
            batchLimit: r.batchLimit,
            outstanding: r.outstanding,
            restarts: r.restarts,
            batches: r.counters.batches,
            rows: r.counters.rows,
          })),
        })),
      })),
    };
  };

  /** A frame from two readings, with the cluster's view when there is one. */
  const frameOf = (before: Reading | undefined, reading: Reading): StatusFrame => {
    const frame = statusFrame(before, reading);
    const cluster = options.cluster?.();
    if (cluster !== undefined) frame.cluster = cluster;
    return frame;
  };

  const tick = async (): Promise<StatusFrame> => {
    const reading = await read();
    const frame = frameOf(previous, reading);
    previous = reading;
    history.push(frame);
    if (history.length > keep) history = history.slice(-keep);
    return frame;
  };
  const send = (reply: FastifyReply, event: string, data: unknown): void => {
    reply.raw.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
  };
  const broadcast = async (): Promise<void> => {
    const frame = await tick();
    const recent = events.slice(-20);
    for (const client of clients) send(client, 'frame', { frame, events: recent });
  };
  const stop = (): void => {
    if (timer !== undefined) clearInterval(timer);
    timer = undefined;
    previous = undefined;
    history = [];
  };

  app.get('/', async (request, reply) => {
    if (options.token !== undefined && !signedIn(request)) return reply.type('text/html; charset=utf-8').send(login.replace('{{message}}', ''));
    return reply.type('text/html; charset=utf-8').header('cache-control', 'no-store').send(page);
  });

  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });
  app.post<{ Body: { token?: string } }>('/status/login', async (request, reply) => {
    const given = request.body?.token ?? '';
    if (options.token === undefined || !options.isToken(given)) {
      return reply.code(401).type('text/html; charset=utf-8').send(login.replace('{{message}}', '<p class="error" role="alert">That token is not the admin token.</p>'));
    }
    const id = randomBytes(32).toString('hex');
    sessions.add(id);
    if (sessions.size > 1000) sessions.delete(sessions.values().next().value as string);
    return reply.header('set-cookie', `${sessionCookie}=${id}; HttpOnly; SameSite=Strict; Path=/`).redirect('/', 303);
  });
  app.post('/status/logout', async (request, reply) => {
    const id = cookie(request);
    if (id !== undefined) sessions.delete(id);
    return reply.header('set-cookie', `${sessionCookie}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0`).redirect('/', 303);
  });

  // Browsers ask for an icon; answer with none rather than a 404 in the console.
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).send());

  app.get('/status/snapshot', async () => ({ frame: history.at(-1) ?? frameOf(undefined, await read()), events: events.slice(-20) }));

  app.get('/status/events', (request, reply) => {
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-store', connection: 'keep-alive' });
    clients.add(reply);
    request.raw.on('close', () => {
      clients.delete(reply);
      if (clients.size === 0) stop();
    });
    const started = timer === undefined;
    if (started) {
      timer = setInterval(() => void broadcast().catch((error: unknown) => request.log.error(error)), intervalMs);
    }
    // The page draws at once: history if any, else a first frame (no rates until the next one).
    void (started || history.length === 0 ? tick() : Promise.resolve(undefined)).then(() => send(reply, 'history', { frames: history, events: events.slice(-20) }));
  });

  app.get<{ Params: { name: string } }>('/status/assets/:name', async (request, reply) => {
    const asset = assets[request.params.name];
    if (asset === undefined) throw new RouteNotFoundError(`no asset ${JSON.stringify(request.params.name)}; the page has ${Object.keys(assets).join(', ')}`);
    return reply.type(asset.type).header('cache-control', 'max-age=3600').send(readFileSync(asset.file));
  });

  function cookie(request: FastifyRequest): string | undefined {
    const header = request.headers.cookie ?? '';
    const match = new RegExp(`(?:^|;\\s*)${sessionCookie}=([0-9a-f]{64})`).exec(header);
    return match?.[1];
  }
  function signedIn(request: FastifyRequest): boolean {
    const id = cookie(request);
    return id !== undefined && sessions.has(id);
  }
  /** The page and its sign-in need no token (the page shows the sign-in form instead). */
  function isPublic(request: FastifyRequest): boolean {
    const url = request.url.split('?')[0];
    return (request.method === 'GET' && (url === '/' || url === '/favicon.ico' || url?.startsWith('/status/assets/') === true)) || (request.method === 'POST' && url === '/status/login');
  }
  return { signedIn, isPublic };
}

