import test from 'ava';
import { InvalidOptionError } from '../../../src/errors.js';
import { absoluteLoss, argmax, checkLosses, squaredLoss, zeroOneLoss } from '../../../src/selection/losses.js';

test('argmax: the first largest score; NaN never wins; -1 for no label', (t) => {
  const cases: [scores: number[], expected: number][] = [
    [[0.1, 0.7, 0.2], 1],
    [[0.9], 0],
    [[0.4, 0.4, 0.2], 0],
    [[0.2, 0.4, 0.4], 1],
    [[-3, -1, -2], 1],
    [[Number.NaN, 0.1, 0.3], 2],
    [[0.3, Number.NaN, 0.1], 0],
    [[Number.NEGATIVE_INFINITY, Number.NEGATIVE_INFINITY], 0],
    [[Number.NEGATIVE_INFINITY, 5], 1],
    [[Number.NaN, Number.NaN], -1],
    [[], -1],
  ];
  for (const [scores, expected] of cases) {
    t.is(argmax(scores), expected, JSON.stringify(scores));
    t.is(argmax(Float32Array.from(scores)), expected, `Float32Array ${JSON.stringify(scores)}`);
  }
});

test('zeroOneLoss is 0 exactly when the argmax is the label', (t) => {
  const cases: [scores: number[], label: number, loss: number][] = [
    [[0.1, 0.9], 1, 0],
    [[0.1, 0.9], 0, 1],
    [[0.5, 0.5], 0, 0],
    [[0.5, 0.5], 1, 1],
    [[0, 0, 1], 7, 1],
    [[], 0, 1],
  ];
  for (const [scores, label, loss] of cases) t.is(zeroOneLoss(Float32Array.from(scores), label), loss, `${JSON.stringify(scores)} label ${label}`);
});

test('absoluteLoss and squaredLoss scale the error and clip it to [0, 1]', (t) => {
  const cases: [pred: number, truth: number, scale: number, absolute: number, squared: number][] = [
    [5, 5, 1, 0, 0],
    [3, 5, 4, 0.5, 0.25],
    [7, 5, 4, 0.5, 0.25],
    [5, 2, 4, 0.75, 0.5625],
    [5, 1, 4, 1, 1],
    [100, 0, 4, 1, 1],
    [-100, 0, 4, 1, 1],
    [0.1, 0, 0.2, 0.5, 0.25],
    [Number.NaN, 0, 4, 1, 1],
    [Number.POSITIVE_INFINITY, 0, 4, 1, 1],
    [Number.NEGATIVE_INFINITY, 0, 4, 1, 1],
  ];
  for (const [pred, truth, scale, absolute, squared] of cases) {
    t.is(absoluteLoss(pred, truth, scale), absolute, `absolute ${pred} vs ${truth} / ${scale}`);
    t.is(squaredLoss(pred, truth, scale), squared, `squared ${pred} vs ${truth} / ${scale}`);
  }
});

test('a loss scale that is not a finite positive number is refused', (t) => {
  for (const scale of [0, -1, Number.NaN, Number.POSITIVE_INFINITY, '1' as unknown as number]) {
    const a = t.throws(() => absoluteLoss(1, 0, scale), { instanceOf: InvalidOptionError });
    t.regex(a.message, /loss scale must be a finite number > 0; got/);
    t.throws(() => squaredLoss(1, 0, scale), { instanceOf: InvalidOptionError });
  }
});

test('checkLosses accepts losses in [0, 1] and names the bad one otherwise', (t) => {
  t.notThrows(() => checkLosses('p.feedback', new Map([['a', 0], ['b', 1], ['c', 0.25]])));
  t.notThrows(() => checkLosses('p.feedback', new Map()));
  const bad: [Map<string, number>, RegExp][] = [
    [new Map([['a', -0.1]]), /p\.feedback: the loss of a must be a number in \[0, 1\]; got -0\.1/],
    [new Map([['a', 0], ['b', 1.5]]), /the loss of b .* got 1\.5/],
    [new Map([['a', Number.NaN]]), /got NaN/],
    [new Map([['a', Number.POSITIVE_INFINITY]]), /got Infinity/],
    [new Map([['a', '0.5' as unknown as number]]), /got 0\.5/],
    [new Map([['', 0]]), /model names must be non-empty strings/],
    [new Map([[3 as unknown as string, 0]]), /model names must be non-empty strings; got 3/],
  ];
  for (const [losses, message] of bad) {
    t.throws(() => checkLosses('p.feedback', losses), { instanceOf: InvalidOptionError, message }, String([...losses.entries()]));
  }
  t.throws(() => checkLosses('p.feedback', { a: 1 } as unknown as Map<string, number>), { instanceOf: InvalidOptionError, message: /takes a Map/ });
});

test('checkLosses shows an empty model name as "" in its message', (t) => {
  t.throws(() => checkLosses('p.feedback', new Map([['', 0]])), { instanceOf: InvalidOptionError, message: 'p.feedback: model names must be non-empty strings; got ""' });
});
