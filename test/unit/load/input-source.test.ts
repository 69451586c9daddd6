import test from 'ava';
import { InputSource, type InputRef } from '../../../src/load/input-source.js';

const rows = (n: number, width = 4): Float32Array[] =>
  Array.from({ length: n }, (_, i) => Float32Array.from({ length: width }, (_, j) => (j === 0 ? 0 : (i + 1) * 0.25 + j)));

const key = (s: InputSource, ref: InputRef): string => Array.from(s.floats(ref)).join(',');

test('fresh inputs go through the base inputs in order, then stay distinct by a tag in value 0', (t) => {
  const source = new InputSource(rows(3));
  const refs = Array.from({ length: 9 }, () => source.next());
  t.deepEqual(refs.map((r) => [r.base, r.tag]), [[0, 0], [1, 0], [2, 0], [0, 1], [1, 1], [2, 1], [0, 2], [1, 2], [2, 2]]);
  t.is(new Set(refs.map((r) => key(source, r))).size, 9, 'nine distinct inputs');
  t.is(source.floats(refs[3] as InputRef)[0], 1 / 65536);
  t.deepEqual(Array.from(source.floats(refs[3] as InputRef)).slice(1), Array.from(source.floats(refs[0] as InputRef)).slice(1));
});

test('the JSON text and the request bodies carry exactly the floats the query stands for', (t) => {
  const source = new InputSource(rows(2));
  const body = source.bodies('{"input":', '}');
  for (let i = 0; i < 7; i++) {
    const ref = source.next();
    const expected = Array.from(source.floats(ref));
    t.deepEqual(Array.from(Float32Array.from(JSON.parse(source.json(ref)) as number[])), expected);
    const parsed = JSON.parse(body(ref).toString('utf8')) as { input: number[] };
    t.deepEqual(Array.from(Float32Array.from(parsed.input)), expected);
  }
});

test('inputs whose value 0 is not 0 are sent as they are, never tagged', (t) => {
  const source = new InputSource([Float32Array.of(1, 2), Float32Array.of(3, 4)]);
  const refs = Array.from({ length: 4 }, () => source.next());
  t.deepEqual(refs.map((r) => r.tag), [0, 0, 0, 0]);
  t.deepEqual(Array.from(source.floats(refs[2] as InputRef)), [1, 2]);
});

test('about repeatShare of the queries repeat a recent input; the others are new', (t) => {
  for (const share of [0, 0.3, 0.8]) {
    const source = new InputSource(rows(50), { repeatShare: share, seed: 11 });
    const seen = new Set<string>();
    let repeats = 0;
    const n = 20_000;
    for (let i = 0; i < n; i++) {
      const ref = source.next();
      const k = `${ref.base}/${ref.tag}`;
      if (ref.repeat) {
        repeats++;
        t.true(seen.has(k), 'a repeat was sent before');
      } else if (seen.has(k)) t.fail(`fresh input ${k} was sent before`);
      seen.add(k);
    }
    t.true(Math.abs(repeats / n - share) < 0.02, `share ${share}: ${repeats / n}`);
  }
});

test('matrices are cut into rows; bad inputs are refused', (t) => {
  const source = InputSource.fromMatrix(Float32Array.of(0, 1, 0, 2, 0, 3), 2);
  t.is(source.size, 3);
  t.is(source.width, 2);
  t.throws(() => InputSource.fromMatrix(Float32Array.of(1, 2, 3), 2), { message: /cannot be cut into rows of 2/ });
  t.throws(() => new InputSource([]), { message: /at least one input/ });
  t.throws(() => new InputSource([Float32Array.of(1, 2), Float32Array.of(1)]), { message: /input 1 has 1 values/ });
  t.throws(() => new InputSource(rows(1), { repeatShare: 1.5 }), { message: /repeatShare must be in \[0, 1\]/ });
});
