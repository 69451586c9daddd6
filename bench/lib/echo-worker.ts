/** A Piscina worker that hands its task straight back, the buffer transferred: the cost of the hop alone. */
import { move } from 'piscina';

export default function echo(data: Float32Array): unknown {
  return move(data);
}
