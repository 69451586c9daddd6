import test from 'ava';
import { Cancellation } from '../../../src/kernel/cancellation.js';

test('a Cancellation runs each listener once, in order, when aborted; one added later runs at once', (t) => {
  const c = new Cancellation();
  const heard: string[] = [];
  c.addEventListener('abort', () => heard.push('a'));
  c.addEventListener('abort', () => heard.push('b'));
  t.false(c.aborted);
  t.deepEqual(heard, []);
  c.abort();
  t.true(c.aborted);
  t.deepEqual(heard, ['a', 'b']);
  c.abort();
  t.deepEqual(heard, ['a', 'b'], 'a second abort calls no one again');
  c.addEventListener('abort', () => heard.push('late'));
  t.deepEqual(heard, ['a', 'b', 'late']);
});

test('a listener that throws does not stop the ones after it; its error is thrown once all ran', (t) => {
  const c = new Cancellation();
  const heard: string[] = [];
  c.addEventListener('abort', () => heard.push('a'));
  c.addEventListener('abort', () => {
    throw new Error('boom');
  });
  c.addEventListener('abort', () => heard.push('c'));
  t.throws(() => c.abort(), { message: 'boom' });
  t.deepEqual(heard, ['a', 'c']);
  t.true(c.aborted);
});
