/** How one query ended, as a load test counts it. */
export type QueryStatus =
  /** A model's answer. */
  | 'ok'
  /** The application's default output (Clipper REST `"default": true`): an SLO miss the server admitted to. */
  | 'default'
  /** Refused for overload (HTTP 503, `OverloadedError`). */
  | 'refused'
  /** Anything else: another status, a dropped connection, a timeout. */
  | 'error';

export interface QueryOutcome {
  status: QueryStatus;
  /** Rows in the batch the query ran in, when the target says (the in-process API does). */
  batchSize?: number;
  /** Served from the prediction cache, when the target says. */
  cached?: boolean;
  /** For errors: the status code or message, for the report. */
  detail?: string;
}

/** Counters the server keeps (clipper-ts's /metrics), read before and after each rate. */
export interface ServerCounters {
  batches: number;
  batchRows: number;
  /** Lookups answered from the cache or by joining an identical evaluation in flight. */
  cacheHits: number;
  cacheLookups: number;
}

/**
 * What a load test drives: an HTTP endpoint, or the programmatic API in-process. `send` resolves for every
 * query (a refusal is an outcome, not a rejection) and never waits for anything but that query.
 */
export interface LoadTarget {
  readonly description: string;
  send(index: number): Promise<QueryOutcome>;
  /** The server's counters now, when it exposes them; undefined otherwise. */
  counters?(): Promise<ServerCounters | undefined>;
  close(): Promise<void>;
}
