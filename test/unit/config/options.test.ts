import test, { type ExecutionContext } from 'ava';
import { InvalidOptionError } from '../../../src/errors.js';
import { ManualClock } from '../../../src/kernel/clock.js';
import {
  appDefaults,
  batchingDefaults,
  checkName,
  clipperDefaults,
  deployModelDefaults,
  faultDefaults,
  feedbackDefaults,
  hedgingDefaults,
  inferDefaults,
  multiplexDefaults,
  replicaDefaults,
  replicaSetDefaults,
  resolveClipperOptions,
  resourceLimitsDefaults,
  scaleToZeroDefaults,
  withModelBatching,
  resolveAppOptions,
  resolveBatchingOptions,
  resolveDeployModelOptions,
  resolveSupervisionOptions,
  supervisionDefaults,
  type DeployModelOptions,
  type RegisterAppOptions,
} from '../../../src/config/options.js';

const model: DeployModelOptions = { name: 'mnist-mlp', version: '1', path: 'models/mnist-mlp/1/model.onnx' };
const app: RegisterAppOptions = { name: 'digits', inputType: 'float32', inputShape: [784], defaultOutput: -1 };

/** Asserts that `fn` throws InvalidOptionError, code INVALID_OPTION, with a message matching `message`. */
function rejects(t: ExecutionContext, fn: () => unknown, message: RegExp, name: string): void {
  const error = t.throws(fn, { instanceOf: InvalidOptionError }, name);
  if (error === undefined) return;
  t.is(error.code, 'INVALID_OPTION', name);
  t.is(error.status, 400, name);
  t.regex(error.message, message, name);
}

const show = (v: unknown) => (typeof v === 'number' || v === undefined ? String(v) : JSON.stringify(v));

/** [option, bad value, message]; each is tried alone over valid defaults. */
const badBatching: [string, unknown, RegExp][] = [
  ['mode', 'adaptive', /mode must be one of "aimd", "fixed", "none"; got "adaptive"/],
  ['mode', 1, /mode must be one of/],
  ['mode', null, /mode must be one of .*; got null/],
  ['maxBatchSize', 0, /maxBatchSize must be an integer in \[1, 65536\]; got 0/],
  ['maxBatchSize', -1, /maxBatchSize must be an integer/],
  ['maxBatchSize', 1.5, /maxBatchSize must be an integer.*got 1\.5/],
  ['maxBatchSize', '8', /maxBatchSize must be an integer.*got "8"/],
  ['maxBatchSize', NaN, /maxBatchSize must be an integer.*got NaN/],
  ['maxBatchSize', Infinity, /maxBatchSize must be an integer/],
  ['maxBatchSize', 65_537, /maxBatchSize must be an integer in \[1, 65536\]/],
  ['maxBatchSize', null, /maxBatchSize must be an integer.*got null/],
  ['initialBatchSize', 0, /initialBatchSize must be an integer/],
  ['initialBatchSize', 2.5, /initialBatchSize must be an integer/],
  ['initialBatchSize', 257, /initialBatchSize \(257\) must not exceed .*maxBatchSize \(256\)/],
  ['additiveStep', 0, /additiveStep must be an integer/],
  ['additiveStep', 0.5, /additiveStep must be an integer/],
  ['additiveStep', '2', /additiveStep must be an integer/],
  ['backoffFactor', 0, /backoffFactor must be a number in \(0, 1\]; got 0/],
  ['backoffFactor', 1, /backoffFactor must be a number in \(0, 1\); got 1/],
  ['backoffFactor', 1.5, /backoffFactor must be a number/],
  ['backoffFactor', -0.5, /backoffFactor must be a number/],
  ['backoffFactor', NaN, /backoffFactor must be a number.*got NaN/],
  ['backoffFactor', '0.9', /backoffFactor must be a number/],
  ['latencyBudgetMs', 0, /latencyBudgetMs must be a number in \(0, 600000\]; got 0/],
  ['latencyBudgetMs', -1, /latencyBudgetMs must be a number/],
  ['latencyBudgetMs', NaN, /latencyBudgetMs must be a number/],
  ['latencyBudgetMs', Infinity, /latencyBudgetMs must be a number/],
  ['latencyBudgetMs', 600_001, /latencyBudgetMs must be a number/],
  ['latencyBudgetMs', '10', /latencyBudgetMs must be a number/],
  ['maxQueueDelayMicroseconds', -1, /maxQueueDelayMicroseconds must be an integer in \[0, 10000000\]/],
  ['maxQueueDelayMicroseconds', 0.5, /maxQueueDelayMicroseconds must be an integer/],
  ['maxQueueDelayMicroseconds', 10_000_001, /maxQueueDelayMicroseconds must be an integer/],
  ['maxQueueSize', 0, /maxQueueSize must be an integer in \[1, 10000000\]/],
  ['maxQueueSize', 1.5, /maxQueueSize must be an integer/],
  ['maxBatchsize', 8, /maxBatchsize is not an option; known options: mode, maxBatchSize, /],
];

test('resolveBatchingOptions rejects each bad value, naming the option', (t) => {
  for (const [key, value, message] of badBatching) {
    const name = `${key} = ${show(value)}`;
    rejects(t, () => resolveBatchingOptions({ [key]: value } as never), new RegExp(`^batching\\.${message.source}`), name);
  }
});

test('resolveDeployModelOptions names batching options under model.batching', (t) => {
  for (const [key, value, message] of badBatching) {
    const name = `${key} = ${show(value)}`;
    rejects(t, () => resolveDeployModelOptions({ ...model, batching: { [key]: value } as never }), new RegExp(`^model\\.batching\\.${message.source}`), name);
  }
  rejects(t, () => resolveDeployModelOptions({ ...model, batching: { initialBatchSize: 65, maxBatchSize: 64 } }), /^model\.batching\.initialBatchSize \(65\) must not exceed model\.batching\.maxBatchSize \(64\)$/, 'initial > max');
});

test('resolveBatchingOptions rejects a non-object', (t) => {
  for (const value of [5, 'aimd', [], [1], true]) rejects(t, () => resolveBatchingOptions(value as never), /^batching must be an object; got /, show(value));
  rejects(t, () => resolveBatchingOptions(5 as never, 'model.batching'), /^model\.batching must be an object; got 5$/, 'custom prefix');
});

test('resolveBatchingOptions applies defaults and freezes the result', (t) => {
  const d = resolveBatchingOptions(undefined);
  t.deepEqual({ ...d }, {
    mode: 'aimd',
    maxBatchSize: 256,
    initialBatchSize: 1,
    additiveStep: 2,
    backoffFactor: 0.9,
    latencyBudgetMs: undefined,
    maxQueueDelayMicroseconds: 0,
    maxQueueSize: 1024,
  });
  t.deepEqual(d, resolveBatchingOptions({}));
  t.true(Object.isFrozen(d));
  t.true(Object.isFrozen(batchingDefaults));
  t.throws(() => {
    (d as { maxBatchSize: number }).maxBatchSize = 1;
  }, { instanceOf: TypeError });
});

test('resolveBatchingOptions keeps the values it is given', (t) => {
  const given = {
    mode: 'fixed',
    maxBatchSize: 64,
    initialBatchSize: 64,
    additiveStep: 4,
    backoffFactor: 0.5,
    latencyBudgetMs: 7.5,
    maxQueueDelayMicroseconds: 2_000,
    maxQueueSize: 10,
  } as const;
  t.deepEqual({ ...resolveBatchingOptions(given) }, given);
  const edges = resolveBatchingOptions({ maxBatchSize: 65_536, initialBatchSize: 1, backoffFactor: 0.999, maxQueueDelayMicroseconds: 10_000_000 });
  t.is(edges.maxBatchSize, 65_536);
  t.is(edges.backoffFactor, 0.999);
});

test('resolveDeployModelOptions rejects each bad value, naming the option', (t) => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['missing name', { name: undefined }, /^model\.name must be a name of 1-64 letters/],
    ['empty name', { name: '' }, /^model\.name must be a name/],
    ['name starting with -', { name: '-mlp' }, /^model\.name must be a name.*got "-mlp"/],
    ['name with a space', { name: 'my model' }, /^model\.name must be a name/],
    ['name with a slash', { name: 'a/b' }, /^model\.name must be a name/],
    ['name of 65 characters', { name: 'a'.repeat(65) }, /^model\.name must be a name/],
    ['numeric name', { name: 5 }, /^model\.name must be a name.*got 5/],
    ['missing version', { version: undefined }, /^model\.version must be a name/],
    ['version with ..', { version: '../1' }, /^model\.version must be a name/],
    ['missing path', { path: undefined }, /^model\.path must be a non-empty string/],
    ['empty path', { path: '' }, /^model\.path must be a non-empty string/],
    ['numeric path', { path: 5 }, /^model\.path must be a non-empty string/],
    ['negative replicas', { replicas: -1 }, /^model\.replicas must be an integer in \[0, 64\]; got -1$/],
    ['too many replicas', { replicas: 65 }, /^model\.replicas must be an integer in \[0, 64\]/],
    ['fractional replicas', { replicas: 1.5 }, /^model\.replicas must be an integer/],
    ['string replicas', { replicas: '2' }, /^model\.replicas must be an integer.*got "2"/],
    ['NaN replicas', { replicas: NaN }, /^model\.replicas must be an integer.*got NaN/],
    ['zero intra-op threads', { intraOpNumThreads: 0 }, /^model\.intraOpNumThreads must be an integer in \[1, 64\]/],
    ['too many intra-op threads', { intraOpNumThreads: 65 }, /^model\.intraOpNumThreads must be an integer/],
    ['bad outputKind', { outputKind: 'probability' }, /^model\.outputKind must be one of "classification", "regression"; got "probability"$/],
    ['empty shape', { inputShape: [] }, /^model\.inputShape must be a non-empty array of positive integers/],
    ['zero dimension', { inputShape: [0] }, /^model\.inputShape must be a non-empty array.*got \[0\]/],
    ['negative dimension', { inputShape: [-1] }, /^model\.inputShape must be a non-empty array/],
    ['fractional dimension', { inputShape: [1.5] }, /^model\.inputShape must be a non-empty array/],
    ['string dimension', { inputShape: ['784'] }, /^model\.inputShape must be a non-empty array/],
    ['NaN dimension', { inputShape: [NaN] }, /^model\.inputShape must be a non-empty array/],
    ['shape as a string', { inputShape: '784' }, /^model\.inputShape must be a non-empty array.*got "784"/],
    ['nine dimensions', { inputShape: [1, 1, 1, 1, 1, 1, 1, 1, 1] }, /^model\.inputShape must be a non-empty array/],
    ['more than 2^24 elements', { inputShape: [4096, 4097] }, /^model\.inputShape must be at most 2\^24 elements per query; got \[4096,4097\]$/],
    ['bad inputType', { inputType: 'float64' }, /^model\.inputType must be one of "float32", "int32"; got "float64"$/],
    ['unknown key', { replica: 2 }, /^model\.replica is not an option; known options: name, version, path, replicas, /],
    ['faults not an object', { faults: 'x' }, /^model\.faults must be an object; got "x"$/],
    ['faults as an array', { faults: [{}] }, /^model\.faults must be an object/],
    ['fault key not an index', { faults: { abc: {} } }, /^model\.faults key must be an integer in \[0, 1023\]; got NaN$/],
    ['fault key too large', { faults: { 1024: {} } }, /^model\.faults key must be an integer in \[0, 1023\]; got 1024$/],
    ['fault key fractional', { faults: { '1.5': {} } }, /^model\.faults key must be an integer/],
    ['fault not an object', { faults: { 0: 5 } }, /^model\.faults\[0\] must be an object; got 5$/],
    ['fault unknown key', { faults: { 0: { bogus: 1 } } }, /^model\.faults\[0\]\.bogus is not an option; known options: stallProbability, stallMs, seed$/],
    ['hedging extra load above 1', { hedging: { maxExtraLoad: 2 } }, /^model\.hedging\.maxExtraLoad must be a number in \[0, 1\]; got 2$/],
    ['hedging enabled not boolean', { hedging: { enabled: 'yes' } }, /^model\.hedging\.enabled must be true or false; got "yes"$/],
    ['scale to zero without idleMs', { scaleToZero: {} }, /^model\.scaleToZero\.idleMs must be a number in \(0, 31536000000\]; got undefined$/],
    ['scale to zero bad cold start', { scaleToZero: { idleMs: 10, coldStart: 'later' } }, /^model\.scaleToZero\.coldStart must be one of "wait", "default"; got "later"$/],
    ['hedging unknown key', { hedging: { delay: 5 } }, /^model\.hedging\.delay is not an option; known options: enabled, delayMs, maxExtraLoad$/],
    ['stall probability above 1', { faults: { 0: { stallProbability: 2 } } }, /^model\.faults\[0\]\.stallProbability must be a number in \[0, 1\]; got 2$/],
    ['stall probability NaN', { faults: { 0: { stallProbability: NaN } } }, /^model\.faults\[0\]\.stallProbability must be a number/],
    ['negative stall', { faults: { 2: { stallMs: -1 } } }, /^model\.faults\[2\]\.stallMs must be a number in \[0, 600000\]/],
    ['fractional seed', { faults: { 0: { seed: 1.5 } } }, /^model\.faults\[0\]\.seed must be an integer in \[0, 4294967295\]/],
    ['batching not an object', { batching: 5 }, /^model\.batching must be an object; got 5$/],
    ['unknown isolation', { isolation: 'vm' }, /^model\.isolation must be one of/],
  ];
  for (const [name, change, message] of cases) rejects(t, () => resolveDeployModelOptions({ ...model, ...change } as never), message, name);
});

test('resolveDeployModelOptions rejects a non-object', (t) => {
  for (const value of [null, undefined, 'mnist', 5, []]) rejects(t, () => resolveDeployModelOptions(value as never), /^model must be an object; got /, show(value));
});

test('resolveDeployModelOptions applies defaults and freezes the result, deeply', (t) => {
  const r = resolveDeployModelOptions(model);
  t.deepEqual(
    { ...r, batching: { ...r.batching } },
    {
      name: 'mnist-mlp',
      version: '1',
      path: 'models/mnist-mlp/1/model.onnx',
      replicas: 1,
      batching: { ...batchingDefaults },
      intraOpNumThreads: 1,
      outputKind: undefined,
      inputShape: undefined,
      inputType: undefined,
      hedging: { enabled: true, delayMs: undefined, maxExtraLoad: 0.1 },
      batchTimeoutMs: 10_000,
      scaleToZero: undefined,
      multiplexed: false,
      isolation: 'thread',
      remote: undefined,
      resourceLimits: undefined,
      faults: {},
    },
  );
  t.true(Object.isFrozen(r));
  t.true(Object.isFrozen(r.batching));
  t.true(Object.isFrozen(r.faults));
  t.true(Object.isFrozen(r.hedging));
});

test('resolveDeployModelOptions keeps given values, copies the shape and fills fault defaults', (t) => {
  const inputShape = [28, 28];
  const r = resolveDeployModelOptions({
    ...model,
    name: 'A1._-z',
    version: 'v2.0',
    replicas: 0,
    intraOpNumThreads: 4,
    outputKind: 'regression',
    inputShape,
    inputType: 'int32',
    batching: { maxBatchSize: 32 },
    faults: { 0: { stallProbability: 0.5, stallMs: 20 }, 3: {} },
  });
  t.is(r.name, 'A1._-z');
  t.is(r.version, 'v2.0');
  t.is(r.replicas, 0);
  t.is(r.intraOpNumThreads, 4);
  t.is(r.outputKind, 'regression');
  t.is(r.inputType, 'int32');
  t.is(r.batching.maxBatchSize, 32);
  t.is(r.batching.mode, 'aimd');
  t.deepEqual(r.inputShape, [28, 28]);
  t.not(r.inputShape, inputShape);
  inputShape[0] = 1;
  t.deepEqual(r.inputShape, [28, 28], 'later changes to the caller\'s array do not leak in');
  t.true(Object.isFrozen(r.inputShape));
  t.deepEqual(r.faults, { 0: { stallProbability: 0.5, stallMs: 20, seed: 1 }, 3: { stallProbability: 0, stallMs: 0, seed: 1 } });
  t.true(Object.isFrozen(r.faults[0]));
  t.is(resolveDeployModelOptions({ ...model, name: 'a'.repeat(64) }).name.length, 64);
});

test('resolveAppOptions rejects each bad value, naming the option', (t) => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['missing name', { name: undefined }, /^app\.name must be a name/],
    ['bad name', { name: '.hidden' }, /^app\.name must be a name.*got "\.hidden"/],
    ['missing inputType', { inputType: undefined }, /^app\.inputType must be one of "float32", "int32"; got undefined$/],
    ['bad inputType', { inputType: 'uint8' }, /^app\.inputType must be one of/],
    ['missing inputShape', { inputShape: undefined }, /^app\.inputShape must be a non-empty array of positive integers/],
    ['empty inputShape', { inputShape: [] }, /^app\.inputShape must be a non-empty array/],
    ['nested inputShape', { inputShape: [[28, 28]] }, /^app\.inputShape must be a non-empty array/],
    ['huge inputShape', { inputShape: [1 << 25] }, /^app\.inputShape must be at most 2\^24 elements/],
    ['missing defaultOutput', { defaultOutput: undefined }, /^app\.defaultOutput must be a finite number, a string or null; got undefined$/],
    ['NaN defaultOutput', { defaultOutput: NaN }, /^app\.defaultOutput must be a finite number.*got NaN$/],
    ['Infinity defaultOutput', { defaultOutput: Infinity }, /^app\.defaultOutput must be a finite number/],
    ['object defaultOutput', { defaultOutput: { label: 1 } }, /^app\.defaultOutput must be a finite number.*got \{"label":1\}$/],
    ['array defaultOutput', { defaultOutput: [1] }, /^app\.defaultOutput must be a finite number/],
    ['boolean defaultOutput', { defaultOutput: false }, /^app\.defaultOutput must be a finite number.*got false$/],
    ['zero SLO', { latencySloMs: 0 }, /^app\.latencySloMs must be a number in \(0, 3600000\]; got 0$/],
    ['negative SLO', { latencySloMs: -5 }, /^app\.latencySloMs must be a number/],
    ['NaN SLO', { latencySloMs: NaN }, /^app\.latencySloMs must be a number/],
    ['string SLO', { latencySloMs: '20' }, /^app\.latencySloMs must be a number.*got "20"$/],
    ['SLO over an hour', { latencySloMs: 3_600_001 }, /^app\.latencySloMs must be a number/],
    ['negative cache', { cacheMaxBytes: -1 }, /^app\.cacheMaxBytes must be an integer in \[0, 1099511627776\]; got -1$/],
    ['fractional cache', { cacheMaxBytes: 1.5 }, /^app\.cacheMaxBytes must be an integer/],
    ['cache over 1 TiB', { cacheMaxBytes: 2 ** 40 + 1 }, /^app\.cacheMaxBytes must be an integer/],
    ['unknown key', { sloMs: 20 }, /^app\.sloMs is not an option; known options: name, inputType, inputShape, defaultOutput, latencySloMs, cacheMaxBytes, confidenceThreshold, deadlineMarginMs$/],
    ['confidence above 1', { confidenceThreshold: 1.5 }, /^app\.confidenceThreshold must be a number in \[0, 1\]; got 1.5$/],
    ['margin over half the SLO', { deadlineMarginMs: 15 }, /^app\.deadlineMarginMs must be a number in \[0, 10\]; got 15$/],
  ];
  for (const [name, change, message] of cases) rejects(t, () => resolveAppOptions({ ...app, ...change } as never), message, name);
  for (const value of [null, undefined, 'digits', 7, []]) rejects(t, () => resolveAppOptions(value as never), /^app must be an object; got /, show(value));
});

test('resolveAppOptions applies defaults, keeps given values and freezes the result', (t) => {
  const r = resolveAppOptions(app);
  t.deepEqual({ ...r, inputShape: [...r.inputShape] }, {
    name: 'digits',
    inputType: 'float32',
    inputShape: [784],
    defaultOutput: -1,
    latencySloMs: 20,
    cacheMaxBytes: 64 * 1024 * 1024,
    confidenceThreshold: 0,
    deadlineMarginMs: 2,
  });
  t.is(resolveAppOptions({ ...app, latencySloMs: 5 }).deadlineMarginMs, 0.5, 'the margin defaults to a tenth of a short SLO');
  t.true(Object.isFrozen(r));
  t.true(Object.isFrozen(r.inputShape));
  const cases: [RegisterAppOptions['defaultOutput'], number, number][] = [
    [null, 0.5, 0],
    ['unknown', 3_600_000, 2 ** 40],
    [0, 100, 1],
  ];
  for (const [defaultOutput, latencySloMs, cacheMaxBytes] of cases) {
    const given = resolveAppOptions({ ...app, inputType: 'int32', inputShape: [2, 3], defaultOutput, latencySloMs, cacheMaxBytes });
    t.is(given.defaultOutput, defaultOutput);
    t.is(given.latencySloMs, latencySloMs);
    t.is(given.cacheMaxBytes, cacheMaxBytes);
    t.is(given.inputType, 'int32');
    t.deepEqual([...given.inputShape], [2, 3]);
  }
});

test('resolveSupervisionOptions rejects each bad value, naming the option', (t) => {
  const cases: [string, Record<string, unknown>, RegExp][] = [
    ['negative maxRestarts', { maxRestarts: -1 }, /^supervision\.maxRestarts must be an integer in \[0, 1000000\]; got -1$/],
    ['fractional maxRestarts', { maxRestarts: 1.5 }, /^supervision\.maxRestarts must be an integer/],
    ['string maxRestarts', { maxRestarts: '3' }, /^supervision\.maxRestarts must be an integer.*got "3"$/],
    ['zero window', { windowMs: 0 }, /^supervision\.windowMs must be a number in \(0, 86400000\]; got 0$/],
    ['negative window', { windowMs: -1 }, /^supervision\.windowMs must be a number/],
    ['NaN window', { windowMs: NaN }, /^supervision\.windowMs must be a number/],
    ['window over a day', { windowMs: 86_400_001 }, /^supervision\.windowMs must be a number/],
    ['negative base', { backoffBaseMs: -1 }, /^supervision\.backoffBaseMs must be a number in \[0, 3600000\]; got -1$/],
    ['NaN base', { backoffBaseMs: NaN }, /^supervision\.backoffBaseMs must be a number/],
    ['NaN max', { backoffMaxMs: NaN }, /^supervision\.backoffMaxMs must be a number/],
    ['max over an hour', { backoffMaxMs: 3_600_001 }, /^supervision\.backoffMaxMs must be a number/],
    ['max below base', { backoffBaseMs: 500, backoffMaxMs: 100 }, /^supervision\.backoffMaxMs \(100\) must be >= supervision\.backoffBaseMs \(500\)$/],
    ['base above the default max', { backoffBaseMs: 6_000 }, /^supervision\.backoffMaxMs \(5000\) must be >= supervision\.backoffBaseMs \(6000\)$/],
    ['unknown key', { retries: 3 }, /^supervision\.retries is not an option; known options: maxRestarts, windowMs, backoffBaseMs, backoffMaxMs$/],
  ];
  for (const [name, change, message] of cases) rejects(t, () => resolveSupervisionOptions(change as never), message, name);
  for (const value of ['x', 5, [], true]) rejects(t, () => resolveSupervisionOptions(value as never), /^supervision must be an object; got /, show(value));
});

test('resolveSupervisionOptions applies defaults, keeps given values and freezes the result', (t) => {
  const d = resolveSupervisionOptions(undefined);
  t.deepEqual({ ...d }, { maxRestarts: 5, windowMs: 60_000, backoffBaseMs: 100, backoffMaxMs: 5_000 });
  t.deepEqual({ ...d }, { ...supervisionDefaults });
  t.true(Object.isFrozen(d));
  t.deepEqual({ ...resolveSupervisionOptions({ maxRestarts: 0, backoffBaseMs: 0, backoffMaxMs: 0, windowMs: 1 }) }, {
    maxRestarts: 0,
    windowMs: 1,
    backoffBaseMs: 0,
    backoffMaxMs: 0,
  });
  t.is(resolveSupervisionOptions({ backoffBaseMs: 200, backoffMaxMs: 200 }).backoffMaxMs, 200);
});

test('checkName accepts names of 1-64 letters, digits, ".", "_" or "-" starting with a letter or digit', (t) => {
  for (const good of ['a', 'A', '7', 'mnist-mlp', 'v1.2_3', 'a'.repeat(64)]) t.is(checkName('x', good), good);
  for (const bad of ['', '.a', '_a', '-a', 'a b', 'a/b', 'a\\b', 'a'.repeat(65), 'é', 'a\n']) {
    rejects(t, () => checkName('thing.name', bad), /^thing\.name must be a name of 1-64 letters/, JSON.stringify(bad));
  }
});

// Regression: a key present with the value undefined (allowed by the optional property types, common when
// forwarding config) takes its default; spread over the defaults, it once replaced them and failed validation.
test('an option explicitly set to undefined takes its default', (t) => {
  t.is(resolveBatchingOptions({ maxBatchSize: undefined }).maxBatchSize, 256);
  t.is(resolveSupervisionOptions({ maxRestarts: undefined }).maxRestarts, 5);
});

// Regression: a value JSON.stringify cannot show (a BigInt, a circular object) still gives InvalidOptionError
// naming the option; the message once threw a TypeError instead.
test('a bad value that JSON cannot show still gives InvalidOptionError', (t) => {
  const circular: Record<string, unknown> = {};
  circular.self = circular;
  rejects(t, () => resolveBatchingOptions({ maxBatchSize: circular as never }), /^batching\.maxBatchSize must be an integer/, 'circular');
  rejects(t, () => resolveAppOptions({ ...app, inputShape: [1n as never] }), /^app\.inputShape must be a non-empty array/, 'bigint');
});

test('every option group has one frozen defaults object, and its known keys are that object\'s keys', (t) => {
  const groups = { appDefaults, batchingDefaults, clipperDefaults, deployModelDefaults, faultDefaults, feedbackDefaults, hedgingDefaults, inferDefaults, multiplexDefaults, replicaDefaults, replicaSetDefaults, resourceLimitsDefaults, scaleToZeroDefaults, supervisionDefaults };
  for (const [name, defaults] of Object.entries(groups)) t.true(Object.isFrozen(defaults), name);
  const unknown = (fn: () => unknown): string => (t.throws(fn, { instanceOf: InvalidOptionError })?.message ?? '').replace(/^.* known options: /, '');
  t.is(unknown(() => resolveDeployModelOptions({ ...model, bogus: 1 } as never)), ['name', 'version', 'path', ...Object.keys(deployModelDefaults)].join(', '));
  t.is(unknown(() => resolveAppOptions({ ...app, bogus: 1 } as never)), ['name', 'inputType', 'inputShape', 'defaultOutput', ...Object.keys(appDefaults)].join(', '));
  t.is(unknown(() => resolveBatchingOptions({ bogus: 1 } as never)), Object.keys(batchingDefaults).join(', '));
  t.is(unknown(() => resolveDeployModelOptions({ ...model, hedging: { bogus: 1 } } as never)), Object.keys(hedgingDefaults).join(', '));
  t.is(unknown(() => resolveDeployModelOptions({ ...model, faults: { 0: { bogus: 1 } } } as never)), Object.keys(faultDefaults).join(', '));
  t.is(unknown(() => resolveDeployModelOptions({ ...model, scaleToZero: { idleMs: 5, bogus: 1 } } as never)), Object.keys(scaleToZeroDefaults).join(', '));
  t.is(unknown(() => resolveDeployModelOptions({ ...model, resourceLimits: { bogus: 1 } } as never)), Object.keys(resourceLimitsDefaults).join(', '));
  t.is(unknown(() => resolveClipperOptions({ bogus: 1 } as never)), Object.keys(clipperDefaults).join(', '));
  t.is(unknown(() => resolveClipperOptions({ multiplex: { maxActiveModels: 2, bogus: 1 } } as never)), Object.keys(multiplexDefaults).join(', '));
});

test('the resolved options take their values from the defaults objects', (t) => {
  const r = resolveDeployModelOptions(model);
  t.is(r.replicas, deployModelDefaults.replicas);
  t.is(r.batchTimeoutMs, deployModelDefaults.batchTimeoutMs);
  t.deepEqual({ ...r.hedging }, { ...hedgingDefaults });
  t.deepEqual({ ...resolveDeployModelOptions({ ...model, faults: { 1: {} } }).faults[1] }, { ...faultDefaults });
  t.is(resolveDeployModelOptions({ ...model, scaleToZero: { idleMs: 5 } }).scaleToZero?.coldStart, scaleToZeroDefaults.coldStart);
  const a = resolveAppOptions(app);
  t.is(a.latencySloMs, appDefaults.latencySloMs);
  t.is(a.cacheMaxBytes, appDefaults.cacheMaxBytes);
  t.is(a.deadlineMarginMs, 2, 'min(2 ms, SLO / 10) for the default 20 ms SLO');
  t.is(resolveAppOptions({ ...app, latencySloMs: 10 }).deadlineMarginMs, 1);
});

test('resolveClipperOptions validates the system options once and freezes them', (t) => {
  const r = resolveClipperOptions(undefined);
  t.deepEqual({ ...r, supervision: { ...r.supervision } }, { modelRepository: undefined, supervision: { ...supervisionDefaults }, clock: undefined, multiplex: undefined, tracer: undefined });
  t.true(Object.isFrozen(r));
  const clock = new ManualClock();
  const given = resolveClipperOptions({ modelRepository: '/models', clock, multiplex: { maxActiveModels: 2 }, supervision: { maxRestarts: 1 } });
  t.is(given.clock, clock);
  t.deepEqual(given.multiplex, { maxActiveModels: 2 });
  t.is(given.supervision.maxRestarts, 1);
  const cases: [string, unknown, RegExp][] = [
    ['not an object', 5, /^options must be an object; got 5$/],
    ['empty repository', { modelRepository: '' }, /^options\.modelRepository must be a non-empty path; got ""$/],
    ['clock without setTimeout', { clock: { now: () => 0 } }, /^options\.clock must be a Clock/],
    ['multiplex of zero', { multiplex: { maxActiveModels: 0 } }, /^options\.multiplex\.maxActiveModels must be an integer in \[1, 1024\]; got 0$/],
    ['multiplex without a count', { multiplex: {} }, /^options\.multiplex\.maxActiveModels must be an integer/],
    ['bad supervision', { supervision: { maxRestarts: -1 } }, /^supervision\.maxRestarts must be an integer/],
    ['tracer without startSpan', { tracer: { name: 'x' } }, /^options\.tracer must be an OpenTelemetry Tracer/],
  ];
  for (const [name, value, message] of cases) rejects(t, () => resolveClipperOptions(value as never), message, name);
});

test('withModelBatching puts a model\'s config.json batching under the deployment\'s, key by key', (t) => {
  const resolved = resolveDeployModelOptions({ ...model, batching: { maxQueueSize: 10 } });
  const r = withModelBatching(resolved, { maxBatchSize: 32, maxQueueSize: 99, mode: 'fixed' }, { maxQueueSize: 10 }, '/m/1/config.json');
  t.like(r.batching, { maxBatchSize: 32, maxQueueSize: 10, mode: 'fixed', additiveStep: batchingDefaults.additiveStep });
  t.true(Object.isFrozen(r));
  t.is(r.name, resolved.name);
  t.is(withModelBatching(resolved, { maxBatchSize: 32 }, undefined, 'c.json').batching.maxBatchSize, 32);
  rejects(t, () => withModelBatching(resolved, { maxBatchSize: 0 }, undefined, '/m/1/config.json'), /^\/m\/1\/config\.json: batching\.maxBatchSize must be an integer/, 'a bad value names the file');
  rejects(t, () => withModelBatching(resolved, { batchSize: 4 } as never, undefined, 'c.json'), /^c\.json: batching\.batchSize is not an option/, 'an unknown key names the file');
});
