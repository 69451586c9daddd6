import type { AnswerSink, ModelDirectory, ModelVersion, ReplicaAnswer } from '../../actors/contracts.js';

/** One call to {@link FakeModelVersion.predict}, answered (or not) by the test. */
export interface FakeCall {
  readonly input: Float32Array | Int32Array;
  readonly deadline: number;
  /** Answers with these scores (and made-up timings). */
  answer(scores: readonly number[]): void;
  fail(error: unknown): void;
  readonly settled: boolean;
}

/**
 * A model version that answers only when the test says so: each `predict` is recorded in `calls`, and stays
 * pending until the test calls its `answer` or `fail`. With `auto`, every call answers at once with those scores.
 */
export class FakeModelVersion implements ModelVersion {
  readonly model: string;
  readonly version: string;
  outputSize: number;
  readonly calls: FakeCall[] = [];
  auto: readonly number[] | undefined;

  constructor(model: string, version = '1', options: { outputSize?: number; auto?: readonly number[] } = {}) {
    this.model = model;
    this.version = version;
    this.outputSize = options.outputSize ?? 2;
    this.auto = options.auto;
  }

  /** Calls through the promise API (the router's path with the cache on or tracing). */
  predicted = 0;
  /** Calls through the sink API (the router's path with the cache off). */
  sent = 0;

  predict(input: Float32Array | Int32Array, deadline: number): Promise<ReplicaAnswer> {
    this.predicted++;
    return new Promise<ReplicaAnswer>((resolve, reject) => this.#call(input, deadline, { resolve, reject }));
  }

  send(input: Float32Array | Int32Array, deadline: number, sink: AnswerSink): void {
    this.sent++;
    this.#call(input, deadline, sink);
  }

  #call(input: Float32Array | Int32Array, deadline: number, sink: AnswerSink): void {
    let settled = false;
    const call: FakeCall = {
      input,
      deadline,
      answer: (scores) => {
        if (settled) throw new Error(`fake ${this.model}@${this.version}: call answered twice`);
        settled = true;
        sink.resolve({ scores: Float32Array.from(scores), queueMs: 1, batchMs: 2, batchSize: 1, replica: `${this.model}@${this.version}#0` });
      },
      fail: (error) => {
        if (settled) throw new Error(`fake ${this.model}@${this.version}: call answered twice`);
        settled = true;
        sink.reject(error);
      },
      get settled() {
        return settled;
      },
    };
    this.calls.push(call);
    if (this.auto !== undefined) call.answer(this.auto);
  }

  /** The last call not yet answered. */
  get last(): FakeCall {
    for (let i = this.calls.length - 1; i >= 0; i--) {
      const call = this.calls[i] as FakeCall;
      if (!call.settled) return call;
    }
    throw new Error(`fake ${this.model}@${this.version}: no pending call`);
  }
}

/** A model directory over fake versions: add a model, and the router finds it as that model's current version. */
export class FakeModelDirectory implements ModelDirectory {
  readonly #versions = new Map<string, FakeModelVersion>();
  readonly #kinds = new Map<string, 'classification' | 'regression'>();

  add(version: FakeModelVersion, kind: 'classification' | 'regression' = 'classification'): FakeModelVersion {
    this.#versions.set(version.model, version);
    this.#kinds.set(version.model, kind);
    return version;
  }

  remove(model: string): void {
    this.#versions.delete(model);
  }

  current(model: string): FakeModelVersion | undefined {
    return this.#versions.get(model);
  }

  outputKind(model: string): 'classification' | 'regression' {
    return this.#kinds.get(model) ?? 'classification';
  }
}

/** Lets every pending promise callback run (the router's evaluations settle through a few of them). */
export async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
  await new Promise<void>((resolve) => setImmediate(resolve));
}
