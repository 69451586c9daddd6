import { Actor, type ChildFailed } from './actor.js';
import { systemClock, type Clock } from './clock.js';
import { decideRestart, type RestartPolicyOptions } from './restart-policy.js';

/** A child the supervisor can restart, or retire when it keeps failing. */
export interface Supervised {
  readonly name: string;
  /** Starts the child again after a failure. Rejecting counts as another failure. */
  restart(): Promise<void>;
  /** Called once when the supervisor gives up on the child. */
  retire(error: unknown): void;
}

type SupervisorMessage = ChildFailed | { type: 'restartDue'; child: Actor<never> & Supervised };

/** What the supervisor did, for metrics, logs and tests. */
export type SupervisionEvent =
  | { type: 'restartScheduled'; child: string; delayMs: number; attempt: number; error: unknown }
  | { type: 'restarted'; child: string }
  | { type: 'gaveUp'; child: string; failuresInWindow: number; error: unknown };

/**
 * Restarts failed children with exponential backoff and gives up on a child that fails more than
 * `maxRestarts` times within `windowMs` (see {@link decideRestart}); giving up retires the child and is
 * reported through `onEvent`, which is how a failure escalates.
 */
export class Supervisor extends Actor<SupervisorMessage> {
  readonly #policy: RestartPolicyOptions;
  readonly #clock: Clock;
  readonly #onEvent: (event: SupervisionEvent) => void;
  readonly #failures = new Map<string, number[]>();

  constructor(name: string, policy: RestartPolicyOptions, options: { clock?: Clock; onEvent?: (event: SupervisionEvent) => void } = {}) {
    super(name);
    this.#policy = policy;
    this.#clock = options.clock ?? systemClock;
    this.#onEvent = options.onEvent ?? (() => {});
  }

  protected receive(message: SupervisorMessage): void {
    const child = message.child as Actor<never> & Supervised;
    if (message.type === 'childFailed') {
      const history = this.#failures.get(child.name) ?? [];
      const now = this.#clock.now();
      const decision = decideRestart(history, now, this.#policy);
      history.push(now);
      this.#failures.set(child.name, history.filter((t) => now - t < this.#policy.windowMs));
      if (decision.action === 'giveUp') {
        child.retire(message.error);
        this.#onEvent({ type: 'gaveUp', child: child.name, failuresInWindow: decision.failuresInWindow, error: message.error });
        return;
      }
      this.#onEvent({ type: 'restartScheduled', child: child.name, delayMs: decision.delayMs, attempt: decision.attempt, error: message.error });
      this.#clock.setTimeout(() => this.tell({ type: 'restartDue', child }), decision.delayMs);
      return;
    }
    child.restart().then(
      () => this.#onEvent({ type: 'restarted', child: child.name }),
      (error: unknown) => {
        // An Actor whose start fails has already reported itself (status 'failed'); anything else has not.
        if (child.status !== 'failed') this.tell({ type: 'childFailed', child, error });
      },
    );
  }

  /** Forgets a child's failure history (when it is removed for good). */
  forget(childName: string): void {
    this.#failures.delete(childName);
  }
}
