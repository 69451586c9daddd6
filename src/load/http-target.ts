import { Pool } from 'undici';
import type { InputRef, InputSource } from './input-source.js';
import type { LoadTarget, QueryOutcome, ServerCounters } from './load-target.js';
import { parseServerCounters } from './metrics-scrape.js';

/**
 * Which API the queries speak: OIP infer with a JSON body, OIP infer with the binary tensor data extension
 * (a JSON header, the row's FP32 bytes after it, the output asked back as binary), or Clipper's predict.
 */
export type HttpProtocol = 'oip' | 'oip-binary' | 'predict';

export interface HttpTargetOptions {
  /** The server's origin, e.g. `http://127.0.0.1:1337`. */
  url: string;
  protocol: HttpProtocol;
  /** OIP: the model to infer with. Also narrows the batch metrics read from /metrics. */
  model?: string;
  /** Clipper REST: the application to query. */
  app?: string;
  /** Keep-alive connections to open. Enough that queries never wait for a free one below saturation. */
  connections?: number;
  /** A query unanswered after this long counts as an error, ms. Default 30 s. */
  timeoutMs?: number;
}

/**
 * A clipper-ts server (or any server speaking the Open Inference Protocol or Clipper's REST API) over HTTP,
 * through one undici Pool of keep-alive connections: far cheaper per request than `fetch`, so the generator
 * can offer tens of thousands of queries a second without becoming the bottleneck.
 */
export class HttpTarget implements LoadTarget {
  readonly description: string;
  readonly #pool: Pool;
  /** A connection of its own for /metrics, so a scrape never queues behind the load. */
  readonly #metricsPool: Pool;
  readonly #path: string;
  readonly #protocol: HttpProtocol;
  readonly #inputs: InputSource;
  readonly #body: (ref: InputRef) => Buffer;
  readonly #headers: Record<string, string>;
  readonly #options: HttpTargetOptions;
  readonly #timeoutMs: number;
  #metricsAvailable = true;

  constructor(options: HttpTargetOptions, inputs: InputSource) {
    const origin = new URL(options.url).origin;
    this.#options = options;
    this.#protocol = options.protocol;
    this.#inputs = inputs;
    this.#timeoutMs = options.timeoutMs ?? 30_000;
    if (options.protocol === 'oip' || options.protocol === 'oip-binary') {
      const model = options.model ?? 'mnist-mlp';
      this.#path = `/v2/models/${encodeURIComponent(model)}/infer`;
    } else {
      this.#path = `/${encodeURIComponent(options.app ?? 'digits')}/predict`;
    }
    this.#headers = { 'content-type': 'application/json' };
    if (options.protocol === 'oip-binary') {
      const bytes = inputs.width * 4;
      const header = Buffer.from(
        JSON.stringify({
          inputs: [{ name: 'input', shape: [1, inputs.width], datatype: 'FP32', parameters: { binary_data_size: bytes } }],
          parameters: { binary_data_output: true },
        }),
      );
      this.#headers = { 'content-type': 'application/octet-stream', 'inference-header-content-length': String(header.length) };
      this.#body = (ref) => {
        const body = Buffer.allocUnsafe(header.length + bytes);
        header.copy(body);
        const row = inputs.floats(ref);
        Buffer.from(row.buffer, row.byteOffset, row.byteLength).copy(body, header.length);
        return body;
      };
    } else {
      this.#body =
        options.protocol === 'predict'
          ? inputs.bodies('{"input":', '}')
          : inputs.bodies(`{"inputs":[{"name":"input","shape":[1,${inputs.width}],"datatype":"FP32","data":`, '}]}');
    }
    this.description = `${origin}${this.#path}`;
    this.#pool = new Pool(origin, { connections: options.connections ?? 128, pipelining: 1, keepAliveTimeout: 60_000 });
    this.#metricsPool = new Pool(origin, { connections: 1, pipelining: 1 });
  }


  async send(): Promise<QueryOutcome> {
    let response;
    try {
      response = await this.#pool.request({
        path: this.#path,
        method: 'POST',
        headers: this.#headers,
        body: this.#body(this.#inputs.next()),
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
      });
    } catch (error) {
      return { status: 'error', detail: (error as { code?: string }).code ?? (error as Error).message };
    }
    try {
      const code = response.statusCode;
      if (code === 200) {
        if (this.#protocol === 'predict') {
          // Clipper REST says in the body whether this is the application's default output.
          const answer = (await response.body.json()) as { default?: boolean };
          return { status: answer.default === true ? 'default' : 'ok' };
        }
        await response.body.dump();
        return { status: 'ok' };
      }
      await response.body.dump();
      return code === 503 || code === 429 ? { status: 'refused' } : { status: 'error', detail: `HTTP ${code}` };
    } catch (error) {
      return { status: 'error', detail: (error as { code?: string }).code ?? (error as Error).message };
    }
  }

  /** Batch and cache counters from the server's /metrics; undefined (and not asked again) when it has none. */
  async counters(): Promise<ServerCounters | undefined> {
    if (!this.#metricsAvailable) return undefined;
    try {
      const response = await this.#metricsPool.request({ path: '/metrics', method: 'GET', headersTimeout: 5000, bodyTimeout: 5000 });
      if (response.statusCode !== 200) {
        await response.body.dump();
        this.#metricsAvailable = false;
        return undefined;
      }
      // OIP: batches of the model queried. Clipper REST: the application's cache, and batches of the model
      // named with --model (of every model otherwise: the application's policy picks them).
      const model = this.#protocol === 'predict' ? this.#options.model : (this.#options.model ?? 'mnist-mlp');
      const parsed = parseServerCounters(await response.body.text(), {
        ...(model === undefined ? {} : { model }),
        ...(this.#protocol === 'predict' ? { app: this.#options.app ?? 'digits' } : {}),
      });
      if (parsed === undefined) this.#metricsAvailable = false;
      // OIP infer does not go through an application, so it never consults the cache.
      return parsed === undefined || this.#protocol === 'predict' ? parsed : { ...parsed, cacheHits: 0, cacheLookups: 0 };
    } catch {
      this.#metricsAvailable = false;
      return undefined;
    }
  }

  async close(): Promise<void> {
    await Promise.all([this.#pool.close(), this.#metricsPool.close()]);
  }
}
