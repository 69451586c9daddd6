import { ShuttingDownError } from '../errors.js';

/** Lifecycle of an actor. `failed` is entered on an unhandled error and left only by a supervisor's restart. */
export type ActorStatus = 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

/** The two halves of a pending answer, carried inside a message by {@link Actor.ask}. */
export interface Reply<R> {
  resolve(value: R): void;
  reject(error: unknown): void;
}

/** What a supervisor receives when one of its children fails. */
export interface ChildFailed {
  type: 'childFailed';
  child: Actor<never>;
  error: unknown;
}

/** Anything that can receive a child's failure (a {@link Supervisor}). */
export interface FailureSink {
  tell(message: ChildFailed): void;
}

/**
 * An actor: logic in {@link receive}, plus the thin runtime here that owns the mailbox, the lifecycle status
 * and the failure relay.
 *
 * Messages are handled one at a time, in arrival order. A `receive` that returns a promise holds the mailbox
 * until it settles; one that returns nothing lets the next message run at once, so hot-path actors (routers,
 * replicas) never wait on I/O inside `receive` and instead send themselves a message when the I/O finishes.
 *
 * If `receive` or `onStart` throws, the actor becomes `failed` and its supervisor gets a typed
 * {@link ChildFailed} message. Stopping drains: messages already in the mailbox are handled, then `onStop`
 * runs (subclasses wait there for in-flight work).
 *
 * @example
 * class Counter extends Actor<{ type: 'add'; n: number } | { type: 'get'; reply: Reply<number> }> {
 *   #total = 0;
 *   protected receive(m) { if (m.type === 'add') this.#total += m.n; else m.reply.resolve(this.#total); }
 * }
 * const c = new Counter('counter'); await c.start(); c.tell({ type: 'add', n: 2 });
 * await c.ask((reply) => ({ type: 'get', reply })); // 2
 */
export abstract class Actor<M> {
  readonly name: string;
  #status: ActorStatus = 'starting';
  #mailbox: M[] = [];
  #processing = false;
  #idle: (() => void)[] = [];
  #supervisor: FailureSink | undefined;
  #hasRun = false;
  #stopping: Promise<void> | undefined;

  constructor(name: string, supervisor?: FailureSink) {
    this.name = name;
    this.#supervisor = supervisor;
  }

  get status(): ActorStatus {
    return this.#status;
  }

  /** Number of messages waiting in the mailbox. */
  get mailboxSize(): number {
    return this.#mailbox.length;
  }

  /** Handles one message. Throwing fails the actor. */
  protected abstract receive(message: M): void | Promise<void>;

  /** Runs before the first message (and again after each restart). */
  protected onStart(): void | Promise<void> {}

  /** Runs after the mailbox has drained, on stop. */
  protected onStop(): void | Promise<void> {}

  /**
   * Called for a message the actor will never handle (told while stopping or stopped, or left in the mailbox
   * when the actor failed). Subclasses answer any reply the message carries, so no caller waits forever.
   */
  protected undeliverable(_message: M, _error: unknown): void {}

  /** Sends a message; never blocks and never throws. Refused (see {@link undeliverable}) once stopping. */
  tell(message: M): void {
    if (this.#status === 'stopping' || this.#status === 'stopped') {
      this.undeliverable(message, new ShuttingDownError(`actor ${this.name} is ${this.#status}`));
      return;
    }
    if (this.#status === 'failed') {
      this.undeliverable(message, new ShuttingDownError(`actor ${this.name} has failed and awaits restart`));
      return;
    }
    this.#mailbox.push(message);
    if (this.#status === 'running') this.#drain();
  }

  /**
   * Sends the actor a message from its own asynchronous work (a batch that finished, a timer). Unlike
   * {@link tell} it is accepted while stopping, so the work the actor drains on stop can still report back.
   */
  protected post(message: M): void {
    if (this.#status === 'stopped' || this.#status === 'failed') {
      this.undeliverable(message, new ShuttingDownError(`actor ${this.name} is ${this.#status}`));
      return;
    }
    this.#mailbox.push(message);
    if (this.#status === 'running' || this.#status === 'stopping') this.#drain();
  }

  /** Sends a message carrying a reply and waits for the answer. */
  ask<R>(build: (reply: Reply<R>) => M): Promise<R> {
    return new Promise<R>((resolve, reject) => this.tell(build({ resolve, reject })));
  }

  /** Starts the actor: `onStart`, then the messages told meanwhile. */
  async start(): Promise<void> {
    this.#status = 'starting';
    try {
      await this.onStart();
    } catch (error) {
      // A first start that fails is the caller's to handle; a restart that fails is the supervisor's.
      if (this.#hasRun) this.fail(error);
      else {
        this.#status = 'failed';
        this.#rejectMailbox(error);
      }
      throw error;
    }
    if (this.#status !== 'starting') return;
    this.#hasRun = true;
    this.#status = 'running';
    this.#drain();
  }

  /** Stops taking messages, handles those already queued, runs `onStop`. */
  stop(): Promise<void> {
    // A second caller waits for the same stop, onStop included, not just for an empty mailbox.
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  async #stop(): Promise<void> {
    const wasRunning = this.#status === 'running';
    this.#status = 'stopping';
    if (wasRunning) await this.#whenIdle();
    else this.#rejectMailbox(new ShuttingDownError(`actor ${this.name} stopped before it ran`));
    await this.onStop();
    this.#status = 'stopped';
  }

  /**
   * Marks the actor failed and tells its supervisor. For failures detected outside `receive`, for example a
   * worker thread that died while the actor awaited it.
   */
  protected fail(error: unknown): void {
    if (this.#status === 'failed' || this.#status === 'stopped') return;
    this.#status = 'failed';
    this.#rejectMailbox(error);
    this.#supervisor?.tell({ type: 'childFailed', child: this as unknown as Actor<never>, error });
  }

  /** Processes the mailbox until it is empty or a `receive` goes asynchronous. */
  #drain(): void {
    if (this.#processing) return;
    this.#processing = true;
    while (this.#mailbox.length > 0 && (this.#status === 'running' || this.#status === 'stopping')) {
      const message = this.#mailbox.shift() as M;
      let result: void | Promise<void>;
      try {
        result = this.receive(message);
      } catch (error) {
        this.#processing = false;
        this.fail(error);
        this.#notifyIdle();
        return;
      }
      if (result instanceof Promise) {
        result.then(
          () => {
            this.#processing = false;
            this.#drain();
          },
          (error: unknown) => {
            this.#processing = false;
            this.fail(error);
            this.#notifyIdle();
          },
        );
        return;
      }
    }
    this.#processing = false;
    this.#notifyIdle();
  }

  #rejectMailbox(error: unknown): void {
    const left = this.#mailbox;
    this.#mailbox = [];
    for (const message of left) this.undeliverable(message, error);
  }

  #whenIdle(): Promise<void> {
    if (!this.#processing && this.#mailbox.length === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idle.push(resolve));
  }

  #notifyIdle(): void {
    if (this.#processing || this.#mailbox.length > 0) return;
    const waiters = this.#idle;
    this.#idle = [];
    for (const wake of waiters) wake();
  }
}
