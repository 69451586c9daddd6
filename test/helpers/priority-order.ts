import { waitFor } from './fixtures.js';

/**
 * The priority scenario both protocols are tested with, on a `slow` replica that runs one row a batch (each row
 * [ms, id] takes ms and answers id): a 400 ms blocker runs, three default-level rows queue behind it, then two
 * priority-1 rows arrive, each sent once the one before is queued (so the order they queue in is known).
 * Returns the ids in the order their answers came back; the property is [0, 11, 12, 1, 2, 3] (the urgent rows
 * batched before the default ones queued earlier).
 */
export async function priorityOrder(send: (ms: number, id: number, priority?: number) => Promise<number>, outstanding: () => number): Promise<number[]> {
  const done: number[] = [];
  const sent = (ms: number, id: number, priority?: number): Promise<void> => send(ms, id, priority).then((answer) => void done.push(answer));
  const blocker = sent(400, 0);
  await waitFor(() => outstanding() === 1, 10_000, 'the blocker to run');
  // One at a time, so they queue in this order (sent together, they may reach the replica in any order).
  const low: Promise<void>[] = [];
  for (const id of [1, 2, 3]) {
    low.push(sent(20, id));
    await waitFor(() => outstanding() === 1 + id, 10_000, `default-level query ${id} to queue`);
  }
  const high: Promise<void>[] = [];
  for (const id of [11, 12]) {
    high.push(sent(20, id, 1));
    await waitFor(() => outstanding() === id - 6, 10_000, `priority-1 query ${id} to queue`);
  }
  await Promise.all([blocker, ...low, ...high]);
  return done;
}
