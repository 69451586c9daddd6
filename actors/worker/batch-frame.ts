/**
 * The binary frames a batch crosses a process boundary in: to a child-process worker over a pipe, and to a
 * model container over NATS (README, "Running on more than one machine", documents the same layout for
 * containers written in other languages). A small fixed header, then the raw little-endian tensor: no JSON
 * arrays of numbers. Pure: Buffers in, Buffers out.
 *
 * Every frame starts with the same 8 bytes:
 *
 *   0  u8   version (1)
 *   1  u8   kind: 1 request, 2 reply (ok), 3 reply (error)
 *   2  u16  header length H in bytes (the payload starts at H)
 *   4  u32  id (the request's, echoed by its reply; 0 when the transport correlates, as NATS does)
 *
 * Request (kind 1):  8 u32 rows | 12 u8 dtype (0 float32, 1 int32) | 13 3 bytes zero | 16 f64 timeLeftMs |
 *                    24 u16 model key length K | 26 K bytes model key (UTF-8, `<name>@<version>`);
 *                    payload: rows x features values of dtype.
 * Reply (kind 2):    8 u32 rows | 12 u32 outputSize (values per row) | 16 f64 computeMs | 24 f64 stalledMs;
 *                    payload: rows x outputSize float32.
 * Error (kind 3):    8 f64 computeMs; payload: a UTF-8 JSON {@link WireError} ({ name, code, message, cause }).
 *
 * All integers and floats little-endian.
 */
import type { TensorDtype, WireError } from './protocol.js';

export const FRAME_VERSION = 1;
export const FrameKind = Object.freeze({ request: 1, reply: 2, error: 3 } as const);

const DTYPES: readonly TensorDtype[] = ['float32', 'int32'];
const REQUEST_FIXED = 26;
const REPLY_HEADER = 32;
const ERROR_HEADER = 16;

export interface RequestFrame {
  kind: 'request';
  id: number;
  modelKey: string;
  rows: number;
  dtype: TensorDtype;
  timeLeftMs: number;
  /** rows x features values, raw little-endian bytes. */
  payload: Uint8Array;
}

export interface ReplyFrame {
  kind: 'reply';
  id: number;
  rows: number;
  outputSize: number;
  computeMs: number;
  stalledMs: number;
  /** rows x outputSize float32 values, raw little-endian bytes. */
  payload: Uint8Array;
}

export interface ErrorFrame {
  kind: 'error';
  id: number;
  computeMs: number;
  error: WireError;
}

export type Frame = RequestFrame | ReplyFrame | ErrorFrame;

function start(kind: number, headerLength: number, payloadLength: number, id: number): Buffer {
  const buffer = Buffer.alloc(headerLength + payloadLength);
  buffer.writeUInt8(FRAME_VERSION, 0);
  buffer.writeUInt8(kind, 1);
  buffer.writeUInt16LE(headerLength, 2);
  buffer.writeUInt32LE(id >>> 0, 4);
  return buffer;
}

export function encodeFrame(frame: Frame): Buffer {
  if (frame.kind === 'request') {
    const key = Buffer.from(frame.modelKey, 'utf8');
    const headerLength = REQUEST_FIXED + key.length;
    const out = start(FrameKind.request, headerLength, frame.payload.byteLength, frame.id);
    out.writeUInt32LE(frame.rows, 8);
    out.writeUInt8(DTYPES.indexOf(frame.dtype), 12);
    out.writeDoubleLE(frame.timeLeftMs, 16);
    out.writeUInt16LE(key.length, 24);
    key.copy(out, REQUEST_FIXED);
    out.set(frame.payload, headerLength);
    return out;
  }
  if (frame.kind === 'reply') {
    const out = start(FrameKind.reply, REPLY_HEADER, frame.payload.byteLength, frame.id);
    out.writeUInt32LE(frame.rows, 8);
    out.writeUInt32LE(frame.outputSize, 12);
    out.writeDoubleLE(frame.computeMs, 16);
    out.writeDoubleLE(frame.stalledMs, 24);
    out.set(frame.payload, REPLY_HEADER);
    return out;
  }
  const json = Buffer.from(JSON.stringify(frame.error), 'utf8');
  const out = start(FrameKind.error, ERROR_HEADER, json.length, frame.id);
  out.writeDoubleLE(frame.computeMs, 8);
  json.copy(out, ERROR_HEADER);
  return out;
}

/** Reads a frame; throws, naming what was wrong and what was expected, on a malformed one. */
export function decodeFrame(bytes: Uint8Array): Frame {
  const data = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (data.length < 8) throw new Error(`batch frame has ${data.length} bytes; expected at least the 8-byte common header`);
  const version = data.readUInt8(0);
  if (version !== FRAME_VERSION) throw new Error(`batch frame has version ${version}; expected ${FRAME_VERSION}`);
  const kind = data.readUInt8(1);
  const headerLength = data.readUInt16LE(2);
  const id = data.readUInt32LE(4);
  if (headerLength > data.length) throw new Error(`batch frame header says ${headerLength} bytes but the frame has ${data.length}`);
  const payload = data.subarray(headerLength);
  if (kind === FrameKind.request) {
    if (headerLength < REQUEST_FIXED) throw new Error(`request frame header is ${headerLength} bytes; expected at least ${REQUEST_FIXED}`);
    const keyLength = data.readUInt16LE(24);
    if (REQUEST_FIXED + keyLength !== headerLength) throw new Error(`request frame header is ${headerLength} bytes; with a ${keyLength}-byte model key expected ${REQUEST_FIXED + keyLength}`);
    const dtype = DTYPES[data.readUInt8(12)];
    if (dtype === undefined) throw new Error(`request frame has dtype code ${data.readUInt8(12)}; expected 0 (float32) or 1 (int32)`);
    const rows = data.readUInt32LE(8);
    if (rows === 0 || payload.length % (rows * 4) !== 0) throw new Error(`request frame has ${payload.length} payload bytes for ${rows} rows; expected a whole number of 4-byte values per row`);
    return { kind: 'request', id, rows, dtype, timeLeftMs: data.readDoubleLE(16), modelKey: data.toString('utf8', REQUEST_FIXED, headerLength), payload };
  }
  if (kind === FrameKind.reply) {
    if (headerLength !== REPLY_HEADER) throw new Error(`reply frame header is ${headerLength} bytes; expected ${REPLY_HEADER}`);
    const rows = data.readUInt32LE(8);
    const outputSize = data.readUInt32LE(12);
    if (payload.length !== rows * outputSize * 4) throw new Error(`reply frame has ${payload.length} payload bytes; expected ${rows} rows x ${outputSize} float32 = ${rows * outputSize * 4}`);
    return { kind: 'reply', id, rows, outputSize, computeMs: data.readDoubleLE(16), stalledMs: data.readDoubleLE(24), payload };
  }
  if (kind === FrameKind.error) {
    if (headerLength !== ERROR_HEADER) throw new Error(`error frame header is ${headerLength} bytes; expected ${ERROR_HEADER}`);
    let error: WireError;
    try {
      error = JSON.parse(payload.toString('utf8')) as WireError;
    } catch (cause) {
      throw new Error('error frame payload is not JSON; expected a WireError { name, message, code?, cause? }', { cause });
    }
    return { kind: 'error', id, computeMs: data.readDoubleLE(8), error };
  }
  throw new Error(`batch frame has kind ${kind}; expected 1 (request), 2 (reply) or 3 (error)`);
}

/** A copy of `payload` as an ArrayBuffer of its own (a Buffer may be a view into a larger pooled one). */
export function ownBuffer(payload: Uint8Array): ArrayBuffer {
  const out = new ArrayBuffer(payload.byteLength);
  new Uint8Array(out).set(payload);
  return out;
}

/**
 * Splits a byte stream (a pipe) into frames, each sent with a u32 little-endian length prefix. Returns the
 * whole frames found and keeps the rest for the next chunk.
 */
export class FrameReader {
  #pending: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): Buffer[] {
    this.#pending = this.#pending.length === 0 ? chunk : Buffer.concat([this.#pending, chunk]);
    const frames: Buffer[] = [];
    while (this.#pending.length >= 4) {
      const length = this.#pending.readUInt32LE(0);
      if (this.#pending.length < 4 + length) break;
      frames.push(this.#pending.subarray(4, 4 + length));
      this.#pending = this.#pending.subarray(4 + length);
    }
    return frames;
  }
}

/** The length prefix that goes before a frame on a stream. */
export function lengthPrefix(frame: Buffer): Buffer {
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32LE(frame.length, 0);
  return prefix;
}
