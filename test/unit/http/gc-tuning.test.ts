import test from 'ava';
import { HEAP_GROWING_PERCENT, tuneGarbageCollector } from '../../../src/http/gc-tuning.js';

test('tuneGarbageCollector sets the heap growing factor unless node was given one', (t) => {
  t.is(HEAP_GROWING_PERCENT, 100);
  t.is(tuneGarbageCollector(['--heap-growing-percent=300'], ''), undefined, 'a node flag stands');
  t.is(tuneGarbageCollector(['--heap_growing_percent', '300'], ''), undefined, 'in either spelling');
  t.is(tuneGarbageCollector([], '--max-old-space-size=512 --heap-growing-percent=50'), undefined, 'so does NODE_OPTIONS');
  t.is(tuneGarbageCollector(['--heap-growing-percentage=5'], ''), HEAP_GROWING_PERCENT, 'only that flag counts');
  t.is(tuneGarbageCollector([], ''), HEAP_GROWING_PERCENT, 'otherwise it is set');
});
