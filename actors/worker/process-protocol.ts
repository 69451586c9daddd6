/**
 * The control plane between a process model worker (process-model-worker.ts) and its child
 * (process-worker-entry.ts), over Node's IPC channel as small JSON messages. Types only. Batches do not go
 * this way: they cross a separate pipe as length-prefixed binary frames (batch-frame.ts).
 */
import type { InjectedFault, ModelSpec, WireError, WorkerStats } from './protocol.js';

export type ControlRequest =
  | { id: number; op: 'load'; spec: ModelSpec }
  | { id: number; op: 'warmup'; key: string; rows: number }
  | { id: number; op: 'stats' }
  | { id: number; op: 'inject'; fault: InjectedFault };

export type ControlReply = { id: number; ok: true; value?: { ms: number; outputSize: number } | WorkerStats } | { id: number; ok: false; error: WireError };

/** The child's file descriptor for the batch pipe (stdin, stdout, stderr, ipc, then this). */
export const BATCH_PIPE_FD = 4;
