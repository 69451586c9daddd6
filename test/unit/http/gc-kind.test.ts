import test from 'ava';
import { constants } from 'node:perf_hooks';
import { gcKind } from '../../../src/http/metrics.js';

test("gcKind labels perf_hooks' GC kinds as Node numbers them (minor 1, major 4, incremental 8, weakcb 16)", (t) => {
  // The label of clipper_gc_pause_seconds{kind}: a scavenge is "minor", a mark-compact "major".
  t.is(gcKind(constants.NODE_PERFORMANCE_GC_MINOR), 'minor');
  t.is(gcKind(constants.NODE_PERFORMANCE_GC_MAJOR), 'major');
  t.is(gcKind(constants.NODE_PERFORMANCE_GC_INCREMENTAL), 'incremental');
  t.is(gcKind(constants.NODE_PERFORMANCE_GC_WEAKCB), 'weakcb');
  t.deepEqual([1, 4, 8, 16].map(gcKind), ['minor', 'major', 'incremental', 'weakcb']);
  t.is(gcKind(2), 'other');
  t.is(gcKind(undefined), 'other');
});
