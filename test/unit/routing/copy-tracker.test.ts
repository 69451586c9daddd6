import test from 'ava';
import { CopyTracker, type CopyDecision, type CopyEvent } from '../../../src/routing/copy-tracker.js';
import { DeadlineExceededError, OverloadedError, ReplicaFailedError } from '../../../src/errors.js';

/** A budget holding `tokens` hedges, counting what it was asked. */
function budget(tokens: number): { trySpend(): boolean; asked: number; denied: number } {
  return {
    asked: 0,
    denied: 0,
    trySpend() {
      this.asked++;
      if (tokens > 0) {
        tokens--;
        return true;
      }
      this.denied++;
      return false;
    },
  };
}

const late = new DeadlineExceededError('replica m@1#0 could not run the query before its deadline');
const full = new OverloadedError('replica m@1#0 has 1024 queries queued');
const died = new ReplicaFailedError('replica m@1#0 failed while holding the query');

const answered = (copy: number, now: number): CopyEvent<string> => ({ type: 'answered', copy, now });
const failed = (copy: number, error: unknown, now: number, idleSibling?: string): CopyEvent<string> => ({ type: 'failed', copy, error, now, idleSibling });
const hedgeDue = (now: number, candidate?: string): CopyEvent<string> => ({ type: 'hedgeDue', now, candidate });

const none: CopyDecision<string> = { kind: 'none' };
const hedge = (to: string, copy = 1): CopyDecision<string> => ({ kind: 'submit', to, copy, why: 'hedge' });
const retry = (to: string): CopyDecision<string> => ({ kind: 'submit', to, copy: 1, why: 'retry' });
const resolved = (copy: number, cancel: number[], hedgeWon: boolean, elapsedMs: number): CopyDecision<string> => ({ kind: 'resolve', copy, cancel, hedgeWon, elapsedMs });
const rejected = (error: unknown): CopyDecision<string> => ({ kind: 'reject', error });

interface Case {
  name: string;
  /** Whether the set armed a hedge timer; tokens in the budget; the deadline (the query starts at t = 10). */
  hedging?: boolean;
  tokens?: number;
  deadline?: number;
  steps: [CopyEvent<string>, CopyDecision<string>][];
  /** Hedge tokens asked for and refused, at the end. */
  budget?: { asked: number; denied: number };
}

const cases: Case[] = [
  {
    name: 'a plain query answers with its only copy; nothing to cancel',
    steps: [[answered(0, 14), resolved(0, [], false, 4)]],
  },
  {
    name: 'a plain query fails with its only copy error when nothing can retry it',
    steps: [[failed(0, full, 12), rejected(full)]],
  },
  {
    name: 'a slow first copy gets a hedge, the hedge wins, the first copy is cancelled',
    hedging: true,
    tokens: 1,
    steps: [
      [hedgeDue(18, 'b'), hedge('b')],
      [answered(1, 21), resolved(1, [0], true, 11)],
      [answered(0, 40), none],
    ],
    budget: { asked: 1, denied: 0 },
  },
  {
    name: 'the first copy wins after a hedge was sent: not a hedge win, the hedge is cancelled',
    hedging: true,
    tokens: 1,
    steps: [
      [hedgeDue(18, 'b'), hedge('b')],
      [answered(0, 19), resolved(0, [1], false, 9)],
      [answered(1, 25), none],
    ],
  },
  {
    name: 'a hedge denied by the budget sends nothing and the first copy still answers',
    hedging: true,
    tokens: 0,
    steps: [
      [hedgeDue(18, 'b'), none],
      [answered(0, 30), resolved(0, [], false, 20)],
    ],
    budget: { asked: 1, denied: 1 },
  },
  {
    name: 'no other replica to hedge on: the budget is not asked (so nothing counts as denied)',
    hedging: true,
    tokens: 1,
    steps: [[hedgeDue(18, undefined), none]],
    budget: { asked: 0, denied: 0 },
  },
  {
    name: 'no hedge once the deadline has passed',
    hedging: true,
    tokens: 1,
    deadline: 18,
    steps: [[hedgeDue(18, 'b'), none]],
    budget: { asked: 0, denied: 0 },
  },
  {
    name: 'a hedge timer the set did not arm (hedging off) is ignored',
    hedging: false,
    tokens: 1,
    steps: [[hedgeDue(18, 'b'), none]],
    budget: { asked: 0, denied: 0 },
  },
  {
    name: 'at most one hedge per query, however often the timer is reported',
    hedging: true,
    tokens: 5,
    steps: [
      [hedgeDue(18, 'b'), hedge('b')],
      [hedgeDue(26, 'c'), none],
    ],
    budget: { asked: 1, denied: 0 },
  },
  {
    name: 'a hedge timer that fires after the answer does nothing',
    hedging: true,
    tokens: 1,
    steps: [
      [answered(0, 12), resolved(0, [], false, 2)],
      [hedgeDue(18, 'b'), none],
    ],
    budget: { asked: 0, denied: 0 },
  },
  {
    name: 'one copy failing while the other is out waits for the other',
    hedging: true,
    tokens: 1,
    steps: [
      [hedgeDue(18, 'b'), hedge('b')],
      [failed(0, died, 20), none],
      [answered(1, 25), resolved(1, [], true, 15)],
    ],
  },
  {
    name: 'both copies failing rejects with the first error (the first copy explains the query best)',
    hedging: true,
    tokens: 1,
    steps: [
      [hedgeDue(18, 'b'), hedge('b')],
      [failed(1, full, 20), none],
      [failed(0, died, 22, 'c'), rejected(full)],
    ],
  },
  {
    name: 'a deadline drop of the only copy with time left is retried once on an idle sibling',
    steps: [
      [failed(0, late, 30, 'b'), retry('b')],
      [answered(1, 40), resolved(1, [], false, 30)],
    ],
  },
  {
    name: 'the retry ends the hedge wait: a later timer report sends nothing',
    hedging: true,
    tokens: 1,
    steps: [
      [failed(0, late, 12, 'b'), retry('b')],
      [hedgeDue(18, 'c'), none],
    ],
    budget: { asked: 0, denied: 0 },
  },
  {
    name: 'a failed retry rejects with the retry error (the latest word on a query that had time left)',
    steps: [
      [failed(0, late, 30, 'b'), retry('b')],
      [failed(1, died, 40, 'c'), rejected(died)],
    ],
  },
  {
    name: 'no retry without an idle sibling',
    steps: [[failed(0, late, 30, undefined), rejected(late)]],
  },
  {
    name: 'no retry once the deadline has passed',
    deadline: 30,
    steps: [[failed(0, late, 30, 'b'), rejected(late)]],
  },
  {
    name: 'no retry for errors other than a deadline drop (an overload refusal, a dead replica)',
    steps: [[failed(0, full, 20, 'b'), rejected(full)]],
  },
  {
    name: 'no retry when a hedge was sent (both copies failing means the model is in trouble)',
    hedging: true,
    tokens: 1,
    steps: [
      [hedgeDue(18, 'b'), hedge('b')],
      [failed(0, late, 20, 'c'), none],
      [failed(1, late, 21, 'c'), rejected(late)],
    ],
  },
  {
    name: 'events after the query settled, and repeated events for one copy, change nothing',
    steps: [
      [failed(0, full, 20), rejected(full)],
      [answered(0, 21), none],
      [failed(0, died, 22), none],
    ],
  },
  {
    name: 'an event for a copy never sent is ignored',
    steps: [
      [answered(3, 12), none],
      [answered(0, 13), resolved(0, [], false, 3)],
    ],
  },
];

for (const c of cases) {
  test(`copy tracker: ${c.name}`, (t) => {
    const spend = budget(c.tokens ?? 0);
    const tracker = new CopyTracker<string>({ now: 10, deadline: c.deadline ?? 100, hedging: c.hedging ?? false, budget: spend });
    c.steps.forEach(([event, expected], i) => t.deepEqual(tracker.on(event), expected, `step ${i}: ${event.type}`));
    if (c.budget !== undefined) t.deepEqual({ asked: spend.asked, denied: spend.denied }, c.budget);
  });
}

test('copy tracker: settled and copies follow the decisions', (t) => {
  const tracker = new CopyTracker<string>({ now: 0, deadline: 100, hedging: true, budget: budget(1) });
  t.is(tracker.copies, 1);
  t.false(tracker.settled);
  tracker.on(hedgeDue(5, 'b'));
  t.is(tracker.copies, 2);
  t.false(tracker.settled);
  tracker.on(answered(1, 6));
  t.true(tracker.settled);
});
