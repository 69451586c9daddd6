/**
 * The entry of a child-process model worker (forked by process-model-worker.ts). Control requests arrive on
 * the IPC channel; batches arrive on the pipe at {@link BATCH_PIPE_FD} as length-prefixed binary frames and are
 * answered the same way, one at a time, in order. A native crash here (onnxruntime aborting) ends only this
 * process; the parent sees the exit and fails the replica over.
 */
import { Socket } from 'node:net';
import { decodeFrame, encodeFrame, FrameReader, lengthPrefix } from './batch-frame.js';
import { ModelHost } from './model-host.js';
import { BATCH_PIPE_FD, type ControlReply, type ControlRequest } from './process-protocol.js';
import { toWireError } from './wire-error.js';

const host = new ModelHost();
const pipe = new Socket({ fd: BATCH_PIPE_FD, readable: true, writable: true });
const reader = new FrameReader();
let queue: Promise<void> = Promise.resolve();

function send(reply: Buffer): void {
  pipe.write(lengthPrefix(reply));
  pipe.write(reply);
}

pipe.on('data', (chunk: Buffer) => {
  for (const bytes of reader.push(chunk)) {
    queue = queue.then(async () => {
      let frame;
      try {
        frame = decodeFrame(bytes);
      } catch (error) {
        send(encodeFrame({ kind: 'error', id: bytes.length >= 8 ? bytes.readUInt32LE(4) : 0, computeMs: 0, error: toWireError(error) }));
        return;
      }
      if (frame.kind !== 'request') return;
      send(encodeFrame(await host.run(frame)));
    });
  }
});
// The parent went away: nothing left to answer for.
pipe.on('close', () => process.exit(0));
pipe.on('error', () => process.exit(0));
process.on('disconnect', () => process.exit(0));

process.on('message', (message: ControlRequest) => {
  void (async (): Promise<ControlReply> => {
    try {
      switch (message.op) {
        case 'load':
          await host.load(message.spec);
          return { id: message.id, ok: true };
        case 'warmup':
          return { id: message.id, ok: true, value: await host.warmup(message.key, message.rows) };
        case 'stats':
          return { id: message.id, ok: true, value: host.stats() };
        case 'inject':
          host.inject(message.fault);
          return { id: message.id, ok: true };
      }
    } catch (error) {
      return { id: message.id, ok: false, error: toWireError(error) };
    }
  })().then((reply) => process.send?.(reply));
});
