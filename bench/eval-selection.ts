/**
 * `npm run eval:selection [-- --json] [-- --digits N]`: the model selection layer on the 2,000 held-out MNIST
 * digits, streamed as queries with feedback (the true label) after each answer: predict first, then feedback,
 * so no policy ever sees a label before it answers that query (Clipper, section 5).
 *   1. stationary, on an application of comparable models ({@link COMPARABLE}): the error of each single model,
 *      of Exp3 (and the model it settles on) and of Exp4 ensembles, `exp4OverBest` = Exp4's error / the best
 *      single model's (Clipper, CIFAR-10: 0.0845 / 0.0915 = 0.92), and, in hindsight, the best any fixed
 *      weighting of the members could have done; confidence: Exp4's error when all members agree vs when they do
 *      not (Clipper, ImageNet: 0.047 on 95.7% of queries when 4 of 5 agree, 0.318 otherwise);
 *   2. the same on the three bundled models (linear, MLP, CNN), whose unequal accuracy leaves Exp4 nothing to gain;
 *   3. degradation: halfway, the best model's current version becomes a broken one (the MLP trained on shuffled
 *      labels): feedback events until Exp3 sends 90% of its choices elsewhere, and until Exp4's error recovers;
 *   4. personalisation: two users, one sending inverted digits (1 - x), each best served by a different model:
 *      one Exp3 policy per user vs one shared.
 * Every query has a generous SLO (1 s) so that accuracy is not mixed up with deadlines; `npm run
 * bench:stragglers` measures deadlines.
 */
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Answer } from '../src/api.js';
import { Clipper } from '../src/index.js';
import { digit, loadMnist, type Digits } from '../src/data/mnist-data.js';
import { modelsDir } from '../src/paths.js';
import type { PolicySpec } from '../src/selection/policy-factory.js';
import {
  bestFixedMixture,
  firstGoodWindow,
  firstIndex,
  invertDigits,
  makeEvalRepository,
  probabilitiesFromLogWeights,
  share,
} from './lib/selection-data.js';

const SLO_MS = 1000;
/** The three models `clipper-ts serve` deploys: the degradation and personalisation experiments use them. */
const MODELS = ['mnist-linear', 'mnist-mlp', 'mnist-cnn'] as const;
/**
 * An application of comparable models (held-out accuracy 0.966-0.980) that err on different digits: the
 * stationary experiment's default members. models/manifest.json says what each is.
 */
export const COMPARABLE = ['mnist-cnn', 'mnist-cnn-aug', 'mnist-mlp-aug', 'mnist-knn'] as const;
const modelPath = (name: string, version = '1'): string => path.join(modelsDir, name, version, 'model.onnx');

async function registerDigitsApp(clipper: Clipper, name: string, policy: PolicySpec, models: readonly string[]): Promise<void> {
  await clipper.registerApp({ name, inputType: 'float32', inputShape: [784], defaultOutput: -1, latencySloMs: SLO_MS, policy });
  for (const m of models) await clipper.linkModel(name, m);
}

async function deployBundled(clipper: Clipper, pathOf: (name: (typeof MODELS)[number]) => string = modelPath): Promise<void> {
  for (const m of MODELS) await clipper.deployModel({ name: m, version: '1', path: pathOf(m), batching: { maxQueueSize: 4096 } });
}

type WeightSnapshot = { logWeights: Record<string, number> };

function policyProbabilities(clipper: Clipper, app: string, models: readonly string[]): Record<string, number> {
  return probabilitiesFromLogWeights((clipper.getPolicyState(app) as unknown as WeightSnapshot).logWeights, models);
}

function wrongAnswer(answer: Answer, label: number): boolean {
  return answer.isDefault || answer.output !== label;
}

/** The Exp4 variants the stationary experiment compares: the default, Clipper's eta, a fast eta, all but the first member. */
function ensemblesFor(members: readonly string[]): { app: string; eta: number; members: readonly string[] }[] {
  return [
    { app: 'exp4', eta: 0.1, members },
    { app: 'exp4-eta0.01', eta: 0.01, members },
    { app: 'exp4-eta1', eta: 1, members },
    { app: `exp4-without-${members[0]}`, eta: 0.1, members: members.slice(1) },
  ];
}

const EXP3S: readonly { app: string; eta: number }[] = [
  { app: 'exp3', eta: 0.1 },
  { app: 'exp3-eta0.01', eta: 0.01 },
];

export interface StationaryResult {
  digits: number;
  members: readonly string[];
  single: Record<string, number>;
  exp3: Record<string, { eta: number; error: number; secondHalfError: number; finalProbabilities: Record<string, number>; choices: Record<string, number> }>;
  exp4: Record<string, { eta: number; members: readonly string[]; error: number; secondHalfError: number; finalWeights: Record<string, number> }>;
  bestSingle: { model: string; error: number };
  /** The default Exp4 ensemble's error over the best single member's (Clipper, CIFAR-10: 0.0845 / 0.0915 = 0.92). */
  exp4OverBest: number;
  hindsightBestMixture: { error: number; weights: Record<string, number>; overBest: number };
  confidence: {
    /** Buckets of the default Exp4 ensemble's answers by how many members agree with its label. */
    byAgreement: { agree: string; share: number; error: number; queries: number }[];
    confident: { share: number; error: number };
    unsure: { share: number; error: number };
  };
  defaults: number;
}

/**
 * Experiments 1 and 2: the whole stream, every policy side by side on the same digits, over `members` (default
 * {@link COMPARABLE}; the bundled three show what unequal members do).
 */
export async function stationary(options: { digits: number; members?: readonly string[] }): Promise<StationaryResult> {
  const { test } = loadMnist();
  const n = Math.min(options.digits, test.count);
  const MODELS = options.members ?? COMPARABLE;
  const ENSEMBLES = ensemblesFor(MODELS);
  const clipper = await Clipper.start();
  try {
    for (const m of MODELS) await clipper.deployModel({ name: m, version: '1', path: modelPath(m), batching: { maxQueueSize: 4096 } });
    for (const m of MODELS) await registerDigitsApp(clipper, `single-${m}`, { kind: 'static', model: m }, [m]);
    for (const e of EXP3S) await registerDigitsApp(clipper, e.app, { kind: 'exp3', eta: e.eta }, MODELS);
    for (const e of ENSEMBLES) await registerDigitsApp(clipper, e.app, { kind: 'exp4', eta: e.eta }, e.members);
    const learning = [...EXP3S.map((e) => e.app), ...ENSEMBLES.map((e) => e.app)];
    const apps = [...MODELS.map((m) => `single-${m}`), ...learning];
    const wrong = new Map(apps.map((a) => [a, [] as boolean[]]));
    const scores = new Map(MODELS.map((m) => [m, [] as Float32Array[]]));
    const choices = new Map(EXP3S.map((e) => [e.app, new Map<string, number>()]));
    const agreement: { agree: number; wrong: boolean }[] = [];
    let defaults = 0;
    for (let i = 0; i < n; i++) {
      const input = digit(test, i);
      const label = test.labels[i] as number;
      const answers = await Promise.all(apps.map((a) => clipper.predict(a, input)));
      answers.forEach((answer, k) => {
        const app = apps[k] as string;
        if (answer.isDefault) defaults++;
        (wrong.get(app) as boolean[]).push(wrongAnswer(answer, label));
        if (app.startsWith('single-')) (scores.get(app.slice('single-'.length)) as Float32Array[]).push(answer.scores as Float32Array);
        const chosen = choices.get(app);
        if (chosen !== undefined) chosen.set(answer.model as string, (chosen.get(answer.model as string) ?? 0) + 1);
        if (app === 'exp4') agreement.push({ agree: Math.round((answer.confidence ?? 0) * MODELS.length), wrong: wrongAnswer(answer, label) });
      });
      await Promise.all(learning.map((a) => clipper.feedback(a, input, label)));
    }
    const error = (app: string): number => share(wrong.get(app) as boolean[]);
    const secondHalf = (app: string): number => share(wrong.get(app) as boolean[], Math.floor(n / 2), n);
    const single = Object.fromEntries(MODELS.map((m) => [m, error(`single-${m}`)]));
    const best = MODELS.reduce((a, b) => ((single[b] as number) < (single[a] as number) ? b : a));
    const mixture = bestFixedMixture(
      MODELS.map((m) => scores.get(m) as Float32Array[]),
      test.labels.subarray(0, n),
    );
    const bucket = (pred: (a: number) => boolean): { share: number; error: number; queries: number } => {
      const inside = agreement.filter((q) => pred(q.agree));
      return { share: inside.length / n, error: inside.length === 0 ? Number.NaN : inside.filter((q) => q.wrong).length / inside.length, queries: inside.length };
    };
    const byAgreement = MODELS.map((_, i) => MODELS.length - i).map((k) => ({ agree: `${k} of ${MODELS.length}`, ...bucket((a) => a === k) }));
    const confident = bucket((a) => a === MODELS.length);
    const unsure = bucket((a) => a < MODELS.length);
    const exp4Error = error('exp4');
    return {
      digits: n,
      members: MODELS,
      single,
      exp3: Object.fromEntries(
        EXP3S.map((e) => [
          e.app,
          {
            eta: e.eta,
            error: error(e.app),
            secondHalfError: secondHalf(e.app),
            finalProbabilities: policyProbabilities(clipper, e.app, MODELS),
            choices: Object.fromEntries(choices.get(e.app) as Map<string, number>),
          },
        ]),
      ),
      exp4: Object.fromEntries(
        ENSEMBLES.map((e) => [
          e.app,
          { eta: e.eta, members: e.members, error: error(e.app), secondHalfError: secondHalf(e.app), finalWeights: policyProbabilities(clipper, e.app, e.members) },
        ]),
      ),
      bestSingle: { model: best, error: single[best] as number },
      exp4OverBest: exp4Error / (single[best] as number),
      hindsightBestMixture: {
        error: mixture.error,
        weights: Object.fromEntries(MODELS.map((m, i) => [m, mixture.weights[i] as number])),
        overBest: mixture.error / (single[best] as number),
      },
      confidence: { byAgreement, confident: { share: confident.share, error: confident.error }, unsure: { share: unsure.share, error: unsure.error } },
      defaults,
    };
  } finally {
    await clipper.stop();
  }
}

/**
 * The broken versions the degradation experiment switches mnist-cnn to: the bundled MLP trained on shuffled
 * labels (the issue's case: wrong, and nearly flat rows), and the CNN with its classes moved up by one (wrong
 * with the CNN's confidence; a JS model in a temporary repository, see {@link makeEvalRepository}).
 */
export type BrokenKind = 'shuffled-labels' | 'permuted-classes';

export interface DegradationResult {
  broken: BrokenKind;
  brokenVersion: string;
  digits: number;
  switchAt: number;
  /** Queries before the switch that the "before" errors are measured on. */
  before: number;
  /** Exp3's probability of the degraded model just before the switch. */
  exp3ProbabilityBefore: number;
  /** Feedback events after the switch until Exp3's probability of the degraded model is <= 0.1. */
  exp3EventsToTenPercent: number;
  /** ... until at most 2 of its last 20 choices (all made after the switch) went to it. */
  exp3EventsToWindow: number;
  exp3ErrorBefore: number;
  exp3ErrorAfter: number;
  exp4ErrorBefore: number;
  /** Exp4's error over the 100 queries right after the switch. */
  exp4ErrorFirst100: number;
  /** Feedback events after the switch until Exp4's error over the next 100 queries is within 1 point of `exp4ErrorBefore`. */
  exp4EventsToRecover: number;
  /**
   * Feedback events after the switch until the broken member no longer changes Exp4's answers: its next 100
   * labels all equal those of a reference Exp4 over the other two members, trained on the same feedback.
   */
  exp4EventsToNoInfluence: number;
  /** Feedback events after the switch until the degraded model's Exp4 weight is below 1%. */
  exp4EventsToWeightBelow1Percent: number;
  exp4ErrorAfterRecovery: number;
  /** Wrong answers in stretches of queries after the switch (offsets from it), for both policies. */
  afterSwitch: { from: number; to: number; exp3Wrong: number; exp4Wrong: number }[];
}

/** Experiment 3: halfway through, mnist-cnn's current version becomes a broken one. */
export async function degradation(options: { digits: number; broken?: BrokenKind; switchAt?: number; window?: number; before?: number }): Promise<DegradationResult> {
  const broken = options.broken ?? 'shuffled-labels';
  const { test } = loadMnist();
  const n = Math.min(options.digits, test.count);
  const switchAt = options.switchAt ?? Math.floor(n / 2);
  const window = options.window ?? 100;
  const before = Math.min(options.before ?? 500, switchAt);
  const degraded = 'mnist-cnn';
  const repo = broken === 'permuted-classes' ? makeEvalRepository() : undefined;
  const clipper = await Clipper.start(repo === undefined ? {} : { modelRepository: repo.dir });
  const brokenVersion = broken === 'permuted-classes' ? '2-permuted' : '2-broken';
  try {
    await deployBundled(clipper, repo === undefined ? modelPath : repo.bundled);
    // Same input and output as the CNN. Deploying makes a version current, so roll back to version 1 at once;
    // the switch comes halfway through the stream.
    const path = repo === undefined ? modelPath('mnist-mlp', '2-broken') : repo.permutedPath;
    await clipper.deployModel({ name: degraded, version: brokenVersion, path, batching: { maxQueueSize: 4096 } });
    await clipper.setModelVersion(degraded, '1');
    await registerDigitsApp(clipper, 'exp3', { kind: 'exp3' }, MODELS);
    await registerDigitsApp(clipper, 'exp4', { kind: 'exp4' }, MODELS);
    const others = MODELS.filter((m) => m !== degraded);
    await registerDigitsApp(clipper, 'exp4-reference', { kind: 'exp4' }, others);
    const exp4Differs: boolean[] = [];
    const exp3Wrong: boolean[] = [];
    const exp3Chose: boolean[] = [];
    const exp3P: number[] = [];
    const exp4Wrong: boolean[] = [];
    const exp4W: number[] = [];
    for (let i = 0; i < n; i++) {
      if (i === switchAt) await clipper.setModelVersion(degraded, brokenVersion);
      const input = digit(test, i);
      const label = test.labels[i] as number;
      const [a3, a4, ref] = await Promise.all([clipper.predict('exp3', input), clipper.predict('exp4', input), clipper.predict('exp4-reference', input)]);
      exp4Differs.push(a4.output !== ref.output);
      exp3Wrong.push(wrongAnswer(a3, label));
      exp3Chose.push(a3.model === degraded);
      exp4Wrong.push(wrongAnswer(a4, label));
      await Promise.all(['exp3', 'exp4', 'exp4-reference'].map((app) => clipper.feedback(app, input, label)));
      exp3P.push(policyProbabilities(clipper, 'exp3', MODELS)[degraded] as number);
      exp4W.push(policyProbabilities(clipper, 'exp4', MODELS)[degraded] as number);
    }
    // Event t's feedback is the (t - switchAt + 1)-th after the switch.
    const events = (t: number): number => (t < 0 ? Number.NaN : t - switchAt + 1);
    const exp4ErrorBefore = share(exp4Wrong, switchAt - before, switchAt);
    const recovered = firstGoodWindow(exp4Wrong, switchAt, window, exp4ErrorBefore + 0.01);
    const choiceWindow = 20;
    return {
      broken,
      brokenVersion,
      digits: n,
      switchAt,
      before,
      exp3ProbabilityBefore: exp3P[switchAt - 1] as number,
      exp3EventsToTenPercent: events(firstIndex(n, switchAt, (t) => (exp3P[t] as number) <= 0.1)),
      exp3EventsToWindow: events(firstIndex(n, switchAt + choiceWindow - 1, (t) => share(exp3Chose, t - choiceWindow + 1, t + 1) <= 0.1)),
      exp3ErrorBefore: share(exp3Wrong, switchAt - before, switchAt),
      exp3ErrorAfter: share(exp3Wrong, switchAt, n),
      exp4ErrorBefore,
      exp4ErrorFirst100: share(exp4Wrong, switchAt, Math.min(n, switchAt + 100)),
      // The query at `recovered` is answered after `recovered - switchAt` feedback events on the broken version.
      exp4EventsToRecover: recovered < 0 ? Number.NaN : recovered - switchAt,
      exp4EventsToNoInfluence: ((t) => (t < 0 ? Number.NaN : t - switchAt))(firstGoodWindow(exp4Differs, switchAt, window, 0)),
      exp4EventsToWeightBelow1Percent: events(firstIndex(n, switchAt, (t) => (exp4W[t] as number) < 0.01)),
      exp4ErrorAfterRecovery: recovered < 0 ? Number.NaN : share(exp4Wrong, recovered, n),
      afterSwitch: [0, 10, 50, 100, 200, 500]
        .map((from, k, all) => ({ from, to: all[k + 1] ?? n - switchAt }))
        .filter((r) => switchAt + r.from < n && r.from < r.to)
        .map(({ from, to }) => {
          const end = Math.min(n, switchAt + to);
          const count = (flags: boolean[]): number => flags.slice(switchAt + from, end).filter(Boolean).length;
          return { from, to: end - switchAt, exp3Wrong: count(exp3Wrong), exp4Wrong: count(exp4Wrong) };
        }),
    };
  } finally {
    await clipper.stop();
    repo?.remove();
  }
}

export interface PersonalisationResult {
  digits: number;
  /** Each model's error on each user's digits (from the feedback losses). */
  modelErrorByUser: Record<string, Record<string, number>>;
  shared: { error: number; errorByUser: Record<string, number>; finalProbabilities: Record<string, number> };
  perUser: { error: number; errorByUser: Record<string, number>; finalProbabilitiesByUser: Record<string, Record<string, number>> };
}

/**
 * Experiment 4: user `plain` sends digits as they are, user `inverted` sends them inverted (1 - x); the CNN
 * serves the first, a model for inverted digits the second. Queries alternate between the users.
 */
export async function personalisation(options: { digits: number }): Promise<PersonalisationResult> {
  const { test } = loadMnist();
  const n = Math.min(options.digits, test.count);
  const inverted = invertDigits(test);
  const repo = makeEvalRepository();
  const clipper = await Clipper.start({ modelRepository: repo.dir });
  const models = ['mnist-cnn', 'mnist-mlp-inverted'];
  const users = ['plain', 'inverted'];
  try {
    await clipper.deployModel({ name: 'mnist-cnn', version: '1', path: repo.bundled('mnist-cnn') });
    await clipper.deployModel({ name: 'mnist-mlp-inverted', version: '1', path: repo.invertedPath });
    await registerDigitsApp(clipper, 'shared', { kind: 'exp3' }, models);
    await registerDigitsApp(clipper, 'per-user', { kind: 'exp3', perUser: {} }, models);
    const wrong: Record<string, Record<string, boolean[]>> = { shared: { plain: [], inverted: [] }, 'per-user': { plain: [], inverted: [] } };
    const losses: Record<string, Record<string, number[]>> = Object.fromEntries(models.map((m) => [m, { plain: [], inverted: [] }]));
    for (let i = 0; i < n; i++) {
      const uid = users[i % 2] as string;
      const source: Digits = uid === 'plain' ? test : inverted;
      const input = digit(source, i);
      const label = test.labels[i] as number;
      const [s, p] = await Promise.all([clipper.predict('shared', input, { uid }), clipper.predict('per-user', input, { uid })]);
      wrong.shared?.[uid]?.push(wrongAnswer(s, label));
      wrong['per-user']?.[uid]?.push(wrongAnswer(p, label));
      const [fb] = await Promise.all([clipper.feedback('shared', input, label, { uid }), clipper.feedback('per-user', input, label, { uid })]);
      for (const m of models) losses[m]?.[uid]?.push(fb.losses[m] as number);
    }
    const errorOf = (app: string): { error: number; errorByUser: Record<string, number> } => {
      const byUser = wrong[app] as Record<string, boolean[]>;
      const all = users.flatMap((u) => byUser[u] as boolean[]);
      return { error: share(all), errorByUser: Object.fromEntries(users.map((u) => [u, share(byUser[u] as boolean[])])) };
    };
    const keyed = clipper.getPolicyState('per-user') as unknown as { users: [string, WeightSnapshot][] };
    return {
      digits: n,
      modelErrorByUser: Object.fromEntries(
        models.map((m) => [m, Object.fromEntries(users.map((u) => {
          const l = losses[m]?.[u] as number[];
          return [u, l.reduce((a, b) => a + b, 0) / l.length];
        }))]),
      ),
      shared: { ...errorOf('shared'), finalProbabilities: policyProbabilities(clipper, 'shared', models) },
      perUser: {
        ...errorOf('per-user'),
        finalProbabilitiesByUser: Object.fromEntries(keyed.users.map(([uid, snap]) => [uid, probabilitiesFromLogWeights(snap.logWeights, models)])),
      },
    };
  } finally {
    await clipper.stop();
    repo.remove();
  }
}

const f4 = (x: number): string => (Number.isNaN(x) ? '-' : x.toFixed(4));
const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const probs = (p: Record<string, number>): string =>
  Object.entries(p)
    .map(([m, v]) => `${m} ${v.toFixed(3)}`)
    .join(', ');

function printStationary(s: StationaryResult, title: string): void {
  console.log(`\n${title}: ${s.members.join(', ')}; ${s.digits} held-out digits, each predicted then fed back`);
  console.log('policy                 eta    error   2nd-half error  final weights / probabilities');
  for (const [m, e] of Object.entries(s.single)) console.log(`${`single ${m}`.padEnd(22)} ${'-'.padStart(5)}  ${f4(e)}`);
  for (const [app, e] of Object.entries(s.exp3)) {
    console.log(`${app.padEnd(22)} ${String(e.eta).padStart(5)}  ${f4(e.error)}  ${f4(e.secondHalfError).padStart(14)}  ${probs(e.finalProbabilities)}`);
  }
  for (const [app, e] of Object.entries(s.exp4)) {
    console.log(`${app.padEnd(22)} ${String(e.eta).padStart(5)}  ${f4(e.error)}  ${f4(e.secondHalfError).padStart(14)}  ${probs(e.finalWeights)}`);
  }
  const h = s.hindsightBestMixture;
  console.log(`hindsight: best fixed weighting of the members (not an online policy): error ${f4(h.error)} (${h.overBest.toFixed(3)} x best single) at ${probs(h.weights)}`);
  const ens = s.exp4.exp4 as StationaryResult['exp4'][string];
  console.log(
    `Exp4 ${f4(ens.error)} / best single (${s.bestSingle.model}) ${f4(s.bestSingle.error)} = exp4OverBest ${s.exp4OverBest.toFixed(3)} ` +
      `(target <= 0.85; Clipper, CIFAR-10: 0.0845 / 0.0915 = 0.92)`,
  );
  console.log(`Exp3 choices over the stream: ${JSON.stringify(s.exp3.exp3?.choices)}; default answers: ${s.defaults}`);

  console.log(`Confidence (default Exp4 ensemble; confidence = share of the ${s.members.length} members agreeing with its label)`);
  console.log('members agreeing   share of queries   error');
  for (const b of s.confidence.byAgreement) console.log(`${b.agree.padEnd(18)} ${pct(b.share).padStart(16)}   ${f4(b.error)}`);
  console.log(
    `confident (all agree): ${f4(s.confidence.confident.error)} on ${pct(s.confidence.confident.share)}; unsure: ${f4(s.confidence.unsure.error)} on ${pct(s.confidence.unsure.share)}` +
      ' (Clipper, ImageNet, 4 of 5 agree: 0.047 on 95.7% vs 0.318)',
  );
}

function printTables(s: StationaryResult, b: StationaryResult, d: readonly DegradationResult[], p: PersonalisationResult, seconds: Record<string, number>): void {
  printStationary(s, `1. Stationary, comparable models (${seconds.stationary?.toFixed(1)} s)`);
  printStationary(b, `2. Stationary, the three bundled models (${seconds.stationaryBundled?.toFixed(1)} s)`);

  const [d0] = d as [DegradationResult, ...DegradationResult[]];
  console.log(`\n3. Degradation: after ${d0.switchAt} of ${d0.digits} digits mnist-cnn's current version becomes a broken one (${seconds.degradation?.toFixed(1)} s)`);
  const columns = d.map((r) => (r.broken === 'shuffled-labels' ? `${r.brokenVersion}: shuffled labels` : `${r.brokenVersion}: classes moved by 1`));
  console.log(`${''.padEnd(62)}${columns.map((c) => c.padStart(32)).join('')}`);
  const row = (what: string, value: (r: DegradationResult) => string): void => console.log(`${what.padEnd(62)}${d.map((r) => value(r).padStart(32)).join('')}`);
  row('Exp3: P(mnist-cnn) just before the switch', (r) => r.exp3ProbabilityBefore.toFixed(3));
  row('Exp3: feedback events until P(mnist-cnn) <= 0.10', (r) => String(r.exp3EventsToTenPercent));
  row('Exp3: ... until at most 2 of its last 20 choices are it', (r) => String(r.exp3EventsToWindow));
  row(`Exp3: error over the ${d0.before} queries before / all after`, (r) => `${f4(r.exp3ErrorBefore)} / ${f4(r.exp3ErrorAfter)}`);
  row(`Exp4: error over the ${d0.before} queries before / first 100 after`, (r) => `${f4(r.exp4ErrorBefore)} / ${f4(r.exp4ErrorFirst100)}`);
  row('Exp4: events until next-100 error within 1 point of before', (r) => String(r.exp4EventsToRecover));
  row('Exp4: events until next 100 answers = ensemble of the others', (r) => String(r.exp4EventsToNoInfluence));
  row('Exp4: events until the broken member weighs < 1%', (r) => String(r.exp4EventsToWeightBelow1Percent));
  row('Exp4: error from recovery on', (r) => f4(r.exp4ErrorAfterRecovery));
  for (const [k, range] of d0.afterSwitch.entries()) {
    row(`wrong answers, queries ${range.from}-${range.to - 1} after the switch (Exp3 / Exp4)`, (r) => `${r.afterSwitch[k]?.exp3Wrong} / ${r.afterSwitch[k]?.exp4Wrong}`);
  }

  console.log(`\n4. Personalisation: users "plain" and "inverted" (1 - x) alternate, ${p.digits} digits (${seconds.personalisation?.toFixed(1)} s)`);
  console.log('model / policy          plain    inverted   both');
  for (const [m, e] of Object.entries(p.modelErrorByUser)) console.log(`${m.padEnd(22)} ${f4(e.plain as number)}   ${f4(e.inverted as number)}`);
  console.log(`${'exp3, one shared'.padEnd(22)} ${f4(p.shared.errorByUser.plain as number)}   ${f4(p.shared.errorByUser.inverted as number)}    ${f4(p.shared.error)}`);
  console.log(`${'exp3, per user'.padEnd(22)} ${f4(p.perUser.errorByUser.plain as number)}   ${f4(p.perUser.errorByUser.inverted as number)}    ${f4(p.perUser.error)}`);
  console.log(`shared policy's final probabilities: ${probs(p.shared.finalProbabilities)}`);
  for (const [uid, pr] of Object.entries(p.perUser.finalProbabilitiesByUser)) console.log(`user ${uid}'s policy: ${probs(pr)}`);
}

async function main(): Promise<void> {
  const json = process.argv.includes('--json');
  const at = process.argv.indexOf('--digits');
  const digits = at >= 0 ? Number(process.argv[at + 1]) : 2000;
  if (!Number.isInteger(digits) || digits < 20 || digits > 2000) throw new Error(`--digits must be an integer in [20, 2000]; got ${process.argv[at + 1]}`);
  const seconds: Record<string, number> = {};
  const timed = async <T>(name: string, run: () => Promise<T>): Promise<T> => {
    const started = performance.now();
    const result = await run();
    seconds[name] = (performance.now() - started) / 1000;
    if (!json) console.error(`${name}: ${seconds[name]?.toFixed(1)} s`);
    return result;
  };
  const s = await timed('stationary', () => stationary({ digits }));
  const b = await timed('stationaryBundled', () => stationary({ digits, members: MODELS }));
  const d = await timed('degradation', async () => [await degradation({ digits, broken: 'shuffled-labels' }), await degradation({ digits, broken: 'permuted-classes' })]);
  const p = await timed('personalisation', () => personalisation({ digits }));
  if (json) {
    console.log(JSON.stringify({ date: new Date().toISOString(), sloMs: SLO_MS, seconds, stationary: s, stationaryBundled: b, degradation: d, personalisation: p }, null, 2));
    return;
  }
  printTables(s, b, d, p, seconds);
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
