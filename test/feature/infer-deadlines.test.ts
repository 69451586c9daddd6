import test from 'ava';
import { Clipper, DeadlineExceededError, InvalidInputError } from '../../src/index.js';
import { fixtureModels } from '../helpers/fixtures.js';

// `infer` answers by each call's own timeout: the calls wait in one deadline list per timeout (src/clipper.ts),
// so calls with different timeouts must each expire on theirs, a later answer must not reach a call that expired,
// and a timeout that could never fire (NaN, Infinity, 0) is refused rather than allowed to hold a list back.
test('infer calls expire on their own timeouts, others are answered, and a timeout that is not a positive finite number is refused', async (t) => {
  const clipper = await Clipper.start({ modelRepository: fixtureModels });
  try {
    // `slow` busy-waits input[0] ms a batch and answers input[1]; no batching, one replica: calls run one by one.
    await clipper.deployModel({ name: 'slow', version: '1', path: 'slow/1/model.mjs', replicas: 1, batching: { mode: 'none' } });
    const [first, second, third] = await Promise.allSettled([
      clipper.infer('slow', [[400, 1]], { timeoutMs: 100 }),
      clipper.infer('slow', [[0, 2]], { timeoutMs: 150 }),
      clipper.infer('slow', [[0, 3]], { timeoutMs: 10_000 }),
    ]);
    t.is(first.status, 'rejected');
    t.true(first.status === 'rejected' && first.reason instanceof DeadlineExceededError, 'the running call, past its 100 ms');
    t.regex(first.status === 'rejected' ? String(first.reason.message) : '', /within 100 ms/);
    t.true(second.status === 'rejected' && second.reason instanceof DeadlineExceededError, 'queued behind it, past its 150 ms');
    t.is(third.status, 'fulfilled', 'the call with room answered once the slow batch was done');
    t.deepEqual(third.status === 'fulfilled' ? Array.from(third.value[0] as Float32Array) : [], [3]);
    for (const timeoutMs of [Number.NaN, Number.POSITIVE_INFINITY, 0, -5]) {
      await t.throwsAsync(clipper.infer('slow', [[0, 1]], { timeoutMs }), { instanceOf: InvalidInputError, message: /timeoutMs is .*; it must be a finite number of milliseconds above 0/ }, String(timeoutMs));
    }
    // The lists are per timeout and dropped when empty: a later call with an earlier timeout still expires on time.
    await t.throwsAsync(clipper.infer('slow', [[300, 4]], { timeoutMs: 50 }), { instanceOf: DeadlineExceededError, message: /within 50 ms/ });
    t.deepEqual(Array.from((await clipper.infer('slow', [[0, 5]], { timeoutMs: 10_000 }))[0] as Float32Array), [5]);
  } finally {
    await clipper.stop();
  }
});
