import test from 'ava';
import { HedgeBudget } from '../../../src/routing/hedge-budget.js';

test('hedges stay within the ratio of queries over a long run', (t) => {
  const budget = new HedgeBudget(0.05);
  let hedged = 0;
  // A pathological model: every query wants a hedge.
  for (let i = 0; i < 100_000; i++) {
    budget.earn();
    if (budget.trySpend()) hedged++;
  }
  t.true(hedged <= 0.05 * 100_000 + 1, `${hedged} hedges`);
  t.true(hedged >= 0.05 * 100_000 - 1, `${hedged} hedges`);
  t.is(budget.sent, hedged);
  t.is(budget.denied, 100_000 - hedged);
});

test('savings are capped by the burst, so a quiet spell cannot buy a storm', (t) => {
  const budget = new HedgeBudget(0.05, 10);
  for (let i = 0; i < 10_000; i++) budget.earn();
  t.is(budget.tokens, 10);
  let burst = 0;
  while (budget.trySpend()) burst++;
  t.is(burst, 10);
});

test('no tokens, no hedge; a zero ratio never hedges', (t) => {
  const zero = new HedgeBudget(0);
  for (let i = 0; i < 1000; i++) zero.earn();
  t.false(zero.trySpend());
  const fresh = new HedgeBudget(0.05);
  t.false(fresh.trySpend(), 'the first query cannot be hedged before it has earned anything');
});

