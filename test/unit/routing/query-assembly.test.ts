import test from 'ava';
import { QueryAssembly } from '../../../src/routing/query-assembly.js';

test('complete once every model answered or failed, in any order', (t) => {
  const a = new QueryAssembly<number>(['a', 'b', 'c']);
  t.false(a.complete);
  a.arrived(2, 30);
  a.failed(0, new Error('boom'));
  t.false(a.complete);
  t.deepEqual(a.pending(), ['b']);
  a.arrived(1, 20);
  t.true(a.complete);
  t.deepEqual(a.values(), [20, 30], 'values keep selection order');
  t.deepEqual(a.failures().map((f) => f.model), ['a']);
  t.deepEqual(a.pending(), []);
});

test('at a deadline, what arrived is there and the stragglers are named', (t) => {
  const a = new QueryAssembly<string>(['m1', 'm2', 'm3', 'm4']);
  a.arrived(0, 'x');
  a.arrived(3, 'y');
  t.deepEqual(a.values(), ['x', 'y']);
  t.deepEqual(a.pending(), ['m2', 'm3']);
  t.false(a.complete);
});

test('a second report for the same model is ignored', (t) => {
  const a = new QueryAssembly<number>(['a', 'b']);
  a.arrived(0, 1);
  a.arrived(0, 2);
  a.failed(0, new Error('late'));
  t.deepEqual(a.values(), [1]);
  t.false(a.complete);
  a.failed(1, new Error('x'));
  t.true(a.complete);
});

test('a report for a model index the query did not select is ignored', (t) => {
  const a = new QueryAssembly<number>(['a', 'b']);
  t.notThrows(() => a.arrived(5, 1));
  t.notThrows(() => a.failed(-1, new Error('x')));
  t.deepEqual(a.values(), []);
  t.deepEqual(a.pending(), ['a', 'b']);
  t.false(a.complete);
});
