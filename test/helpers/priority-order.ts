import { waitFor } from './fixtures.js';

/**
 * The priority scenario both protocols are tested with, on a `slow` replica that runs one row a batch (each row
 * [ms, id] takes ms and answers id): a 200 ms blocker runs, three default-level rows queue behind it, then two
 * priority-1 rows arrive. Returns the ids in the order their answers came back; the property is
 * [0, 11, 12, 1, 2, 3] (the urgent rows batched before the default ones queued earlier).
 */
export async function priorityOrder(send: (ms: number, id: number, priority?: number) => Promise<number>, outstanding: () => number): Promise<number[]> {
  const done: number[] = [];
  const sent = (ms: number, id: number, priority?: number): Promise<void> => send(ms, id, priority).then((answer) => void done.push(answer));
  const blocker = sent(200, 0);
  await waitFor(() => outstanding() === 1, 10_000, 'the blocker to run');
  const low = [1, 2, 3].map((id) => sent(20, id));
  await waitFor(() => outstanding() === 4, 10_000, 'the default-level queries to queue');
  const high = [11, 12].map((id) => sent(20, id, 1));
  await Promise.all([blocker, ...low, ...high]);
  return done;
}
