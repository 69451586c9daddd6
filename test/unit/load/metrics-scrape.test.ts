import test from 'ava';
import { counterDelta, parseServerCounters } from '../../../src/load/metrics-scrape.js';

const text = `# HELP clipper_batch_size Rows per batch
# TYPE clipper_batch_size histogram
clipper_batch_size_bucket{le="1",model="mnist-mlp",version="1"} 3
clipper_batch_size_bucket{le="+Inf",model="mnist-mlp",version="1"} 10
clipper_batch_size_sum{model="mnist-mlp",version="1"} 120
clipper_batch_size_count{model="mnist-mlp",version="1"} 10
clipper_batch_size_sum{model="mnist-cnn",version="1"} 30
clipper_batch_size_count{model="mnist-cnn",version="1"} 5
# HELP clipper_cache_hits_total Prediction cache hits
clipper_cache_hits_total{app="digits"} 40
clipper_cache_shared_total{app="digits"} 10
clipper_cache_misses_total{app="digits"} 50
clipper_cache_hits_total{app="other"} 7
clipper_cache_misses_total{app="other"} 3
clipper_requests_total{app="digits",model="mnist-mlp",status="success"} 100
`;

test('batches, rows and cache lookups are summed over the series that match', (t) => {
  t.deepEqual(parseServerCounters(text), { batches: 15, batchRows: 150, cacheHits: 57, cacheLookups: 110 });
  t.deepEqual(parseServerCounters(text, { model: 'mnist-mlp', app: 'digits' }), { batches: 10, batchRows: 120, cacheHits: 50, cacheLookups: 100 });
});

test('a server without clipper metrics gives undefined', (t) => {
  t.is(parseServerCounters('# nothing here\nhttp_requests_total 5\n'), undefined);
  t.is(parseServerCounters('{"default":false}'), undefined);
});

test('a clipper-ts server before its first batch reads as zeros, not as another server', (t) => {
  const fresh = '# HELP clipper_batch_size Rows per batch\n# TYPE clipper_batch_size histogram\n# HELP clipper_requests_total x\n';
  t.deepEqual(parseServerCounters(fresh, { model: 'mnist-mlp' }), { batches: 0, batchRows: 0, cacheHits: 0, cacheLookups: 0 });
});

test('deltas between readings; undefined when either is missing', (t) => {
  const a = { batches: 1, batchRows: 4, cacheHits: 0, cacheLookups: 2 };
  const b = { batches: 5, batchRows: 40, cacheHits: 3, cacheLookups: 10 };
  t.deepEqual(counterDelta(a, b), { batches: 4, batchRows: 36, cacheHits: 3, cacheLookups: 8 });
  t.is(counterDelta(undefined, b), undefined);
  t.is(counterDelta(a, undefined), undefined);
});
