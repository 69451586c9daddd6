import type { ServerCounters } from './load-target.js';

/** Which series to count: batches of one model, cache lookups of one application (all when undefined). */
export interface ScrapeFilter {
  model?: string;
  app?: string;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

/**
 * Reads clipper-ts's Prometheus text (`GET /metrics`) into the counters a load test reports: batches and rows
 * (`clipper_batch_size` histogram's `_count` and `_sum`) and cache lookups (`clipper_cache_{hits,shared,misses}_total`),
 * summed over the series that match the filter. Returns undefined when the text has none of these families
 * (another server); zeros when they are declared but have no samples yet.
 */
export function parseServerCounters(text: string, filter: ScrapeFilter = {}): ServerCounters | undefined {
  const counters: ServerCounters = { batches: 0, batchRows: 0, cacheHits: 0, cacheLookups: 0 };
  let seen = false;
  for (const line of text.split('\n')) {
    // A family with no samples yet (no batch has run) still announces itself: the server has the counters.
    if (line.startsWith('# TYPE clipper_batch_size ') || line.startsWith('# TYPE clipper_cache_')) seen = true;
    if (line.startsWith('#') || line.length === 0) continue;
    const match = SAMPLE.exec(line);
    if (match === null) continue;
    const name = match[1] as string;
    if (!name.startsWith('clipper_batch_size_') && !name.startsWith('clipper_cache_')) continue;
    const labels: Record<string, string> = {};
    for (const l of (match[2] ?? '').matchAll(LABEL)) labels[l[1] as string] = l[2] as string;
    const value = Number(match[3]);
    if (!Number.isFinite(value)) continue;
    if (name === 'clipper_batch_size_count' || name === 'clipper_batch_size_sum') {
      if (filter.model !== undefined && labels.model !== filter.model) continue;
      seen = true;
      if (name === 'clipper_batch_size_count') counters.batches += value;
      else counters.batchRows += value;
    } else if (name === 'clipper_cache_hits_total' || name === 'clipper_cache_shared_total' || name === 'clipper_cache_misses_total') {
      if (filter.app !== undefined && labels.app !== filter.app) continue;
      seen = true;
      counters.cacheLookups += value;
      if (name !== 'clipper_cache_misses_total') counters.cacheHits += value;
    }
  }
  return seen ? counters : undefined;
}

/** The change between two readings; undefined when either is missing. */
export function counterDelta(before: ServerCounters | undefined, after: ServerCounters | undefined): ServerCounters | undefined {
  if (before === undefined || after === undefined) return undefined;
  return {
    batches: after.batches - before.batches,
    batchRows: after.batchRows - before.batchRows,
    cacheHits: after.cacheHits - before.cacheHits,
    cacheLookups: after.cacheLookups - before.cacheLookups,
  };
}
