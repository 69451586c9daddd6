import test from 'ava';
import fc from 'fast-check';
import { decodeFrame, encodeFrame, FrameReader, lengthPrefix, ownBuffer } from '../../../../actors/worker/batch-frame.js';

test('a request frame round-trips: model key, rows, dtype, time left and the raw tensor', (t) => {
  fc.assert(
    fc.property(fc.string({ maxLength: 40 }), fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: 8 }), fc.constantFrom('float32' as const, 'int32' as const), fc.double({ min: 0, max: 1e6, noNaN: true }), fc.nat(), (key, rows, features, dtype, timeLeftMs, id) => {
      const values = dtype === 'int32' ? Int32Array.from({ length: rows * features }, (_, i) => i - 7) : Float32Array.from({ length: rows * features }, (_, i) => i / 3);
      const bytes = encodeFrame({ kind: 'request', id, modelKey: key, rows, dtype, timeLeftMs, payload: new Uint8Array(values.buffer) });
      const frame = decodeFrame(bytes);
      if (frame.kind !== 'request') return false;
      const back = dtype === 'int32' ? new Int32Array(ownBuffer(frame.payload)) : new Float32Array(ownBuffer(frame.payload));
      return frame.id === id && frame.modelKey === key && frame.rows === rows && frame.dtype === dtype && frame.timeLeftMs === timeLeftMs && back.every((v, i) => v === values[i]);
    }),
  );
  t.pass();
});

test('the request header layout is the documented one (offsets, little-endian)', (t) => {
  const payload = new Uint8Array(new Float32Array([1, 2]).buffer);
  const bytes = encodeFrame({ kind: 'request', id: 7, modelKey: 'm@1', rows: 1, dtype: 'int32', timeLeftMs: 2.5, payload });
  t.is(bytes.readUInt8(0), 1);
  t.is(bytes.readUInt8(1), 1);
  t.is(bytes.readUInt16LE(2), 29);
  t.is(bytes.readUInt32LE(4), 7);
  t.is(bytes.readUInt32LE(8), 1);
  t.is(bytes.readUInt8(12), 1);
  t.is(bytes.readDoubleLE(16), 2.5);
  t.is(bytes.readUInt16LE(24), 3);
  t.is(bytes.toString('utf8', 26, 29), 'm@1');
  t.deepEqual([...bytes.subarray(29)], [...payload]);
});

test('reply and error frames round-trip', (t) => {
  const out = new Float32Array([0.25, 0.75, 1, 0]);
  const reply = decodeFrame(encodeFrame({ kind: 'reply', id: 3, rows: 2, outputSize: 2, computeMs: 1.5, stalledMs: 0, payload: new Uint8Array(out.buffer) }));
  t.like(reply, { kind: 'reply', id: 3, rows: 2, outputSize: 2, computeMs: 1.5, stalledMs: 0 });
  if (reply.kind === 'reply') t.deepEqual([...new Float32Array(ownBuffer(reply.payload))], [...out]);
  const error = { name: 'ModelRuntimeError', code: 'MODEL_RUNTIME_ERROR', message: 'boom', cause: { name: 'TypeError', message: 'x is undefined' } };
  t.deepEqual(decodeFrame(encodeFrame({ kind: 'error', id: 4, computeMs: 2, error })), { kind: 'error', id: 4, computeMs: 2, error });
});

test('malformed frames are refused with what was expected', (t) => {
  t.throws(() => decodeFrame(new Uint8Array(3)), { message: /3 bytes; expected at least the 8-byte common header/ });
  const good = encodeFrame({ kind: 'request', id: 1, modelKey: 'm@1', rows: 2, dtype: 'float32', timeLeftMs: 1, payload: new Uint8Array(16) });
  const badVersion = Buffer.from(good);
  badVersion.writeUInt8(9, 0);
  t.throws(() => decodeFrame(badVersion), { message: /version 9; expected 1/ });
  t.throws(() => decodeFrame(good.subarray(0, good.length - 4)), { message: /12 payload bytes for 2 rows/ });
  const badDtype = Buffer.from(good);
  badDtype.writeUInt8(5, 12);
  t.throws(() => decodeFrame(badDtype), { message: /dtype code 5/ });
  const reply = encodeFrame({ kind: 'reply', id: 1, rows: 2, outputSize: 3, computeMs: 0, stalledMs: 0, payload: new Uint8Array(24) });
  t.throws(() => decodeFrame(reply.subarray(0, 40)), { message: /expected 2 rows x 3 float32 = 24/ });
});

test('the stream reader splits length-prefixed frames however the chunks fall', (t) => {
  const frames = [Buffer.from('a'), Buffer.alloc(0), Buffer.from('hello world')];
  const stream = Buffer.concat(frames.flatMap((f) => [lengthPrefix(f), f]));
  for (let cut = 1; cut < stream.length; cut++) {
    const reader = new FrameReader();
    const got = [...reader.push(stream.subarray(0, cut)), ...reader.push(stream.subarray(cut))];
    t.deepEqual(got.map((b) => b.toString()), ['a', '', 'hello world']);
  }
});
