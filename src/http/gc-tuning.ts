import { setFlagsFromString } from 'node:v8';

/**
 * How much V8 lets the old generation grow past what survived the last mark-compact before it starts the next:
 * a factor of 1 + this / 100. Measured on the soak (issue 15: mnist-mlp, 1,123 queries/s of distinct digits,
 * a 20 ms SLO, 1-minute runs side by side in one session with the CPU to itself): V8's own choice for a ~25 MB
 * heap that it collects quickly is a factor near 1.1, so it ran a mark-compact every ~2.5 s (23-26 a minute, each
 * a 5-10 ms pause plus concurrent marking that takes a core from the model workers), and most of the queries the
 * soak saw refused or answered by default came within 200 ms after one. At 100 (a factor of 2): 8-9 a minute and
 * about a third of the failures (112-120 a minute at V8's default, 35-42 at 100); at 200: 4 a minute, no fewer
 * failures. The cost is the heap's headroom: about one more live heap (~25 MB) before a collection.
 */
export const HEAP_GROWING_PERCENT = 100;

/**
 * Sets V8's heap growing factor for this process (the `serve` command calls it at start; the soak bench too),
 * unless `--heap-growing-percent` was given to node already (on its command line or in NODE_OPTIONS), which then
 * stands. The flag is read at every mark-compact, so setting it at run time takes effect from the next one.
 * Returns the value in force when it set one, else undefined.
 *
 * @example
 * tuneGarbageCollector(); // clipper-ts serve: mark-compacts about a third as often
 */
export function tuneGarbageCollector(execArgv: readonly string[] = process.execArgv, nodeOptions = process.env['NODE_OPTIONS'] ?? ''): number | undefined {
  const given = [...execArgv, ...nodeOptions.split(/\s+/)].some((arg) => /^--heap[-_]growing[-_]percent(=|$)/.test(arg));
  if (given) return undefined;
  setFlagsFromString(`--heap-growing-percent=${HEAP_GROWING_PERCENT}`);
  return HEAP_GROWING_PERCENT;
}
