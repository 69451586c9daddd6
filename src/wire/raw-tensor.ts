/**
 * Raw tensor bytes, as both binary wire formats carry them: gRPC's `raw_input_contents` / `raw_output_contents`
 * and the HTTP binary tensor data extension (little-endian, row major, no padding, each element in its
 * datatype's native size). Shared by the gRPC and HTTP adapters; pure, and imports only the public API.
 */
import { endianness } from 'node:os';
import { InvalidInputError } from '../index.js';

/** One numeric OIP datatype: its size and how to read element `i` of little-endian bytes. */
export interface RawDatatype {
  bytes: number;
  read(view: DataView, i: number): number;
  /** The range typed (non-raw) values must stay in, where the carrier is wider than the type. */
  min?: number;
  max?: number;
}

/** IEEE 754 half precision to a number (sign, 5-bit exponent, 10-bit fraction). */
function halfToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >> 10) & 0x1f;
  const fraction = h & 0x3ff;
  if (exponent === 0) return sign * 2 ** -14 * (fraction / 1024);
  if (exponent === 0x1f) return fraction === 0 ? sign * Infinity : Number.NaN;
  return sign * 2 ** (exponent - 15) * (1 + fraction / 1024);
}

/** The numeric datatypes a model here takes (BOOL and BYTES are not numbers). */
export const rawDatatypes: Readonly<Record<string, RawDatatype>> = Object.freeze({
  FP32: { bytes: 4, read: (v, i) => v.getFloat32(i * 4, true) },
  FP64: { bytes: 8, read: (v, i) => v.getFloat64(i * 8, true) },
  FP16: { bytes: 2, read: (v, i) => halfToNumber(v.getUint16(i * 2, true)) },
  INT8: { bytes: 1, read: (v, i) => v.getInt8(i), min: -128, max: 127 },
  INT16: { bytes: 2, read: (v, i) => v.getInt16(i * 2, true), min: -32768, max: 32767 },
  INT32: { bytes: 4, read: (v, i) => v.getInt32(i * 4, true) },
  INT64: { bytes: 8, read: (v, i) => Number(v.getBigInt64(i * 8, true)) },
  UINT8: { bytes: 1, read: (v, i) => v.getUint8(i), min: 0, max: 255 },
  UINT16: { bytes: 2, read: (v, i) => v.getUint16(i * 2, true), min: 0, max: 65535 },
  UINT32: { bytes: 4, read: (v, i) => v.getUint32(i * 4, true) },
  UINT64: { bytes: 8, read: (v, i) => Number(v.getBigUint64(i * 8, true)) },
});

/** The datatype of that name, or undefined (never a prototype member: `constructor` is no datatype). */
export function rawDatatype(name: unknown): RawDatatype | undefined {
  return typeof name === 'string' && Object.hasOwn(rawDatatypes, name) ? rawDatatypes[name] : undefined;
}

const littleEndian = endianness() === 'LE';

/**
 * A tensor's element count from its shape; throws unless every dimension is a whole number >= 0 and the
 * product stays a safe integer.
 */
export function shapeElements(input: string, shape: readonly number[]): number {
  let elements = 1;
  for (const d of shape) {
    if (!Number.isSafeInteger(d) || d < 0) throw new InvalidInputError(`input ${input} has shape [${shape.join(', ')}]; each dimension must be a whole number >= 0`);
    elements *= d;
  }
  if (!Number.isSafeInteger(elements)) throw new InvalidInputError(`input ${input} has shape [${shape.join(', ')}]: too many elements`);
  return elements;
}

/**
 * Checks that raw bytes hold exactly `elements` values of `datatype` (throws an InvalidInputError naming
 * `what` and both sizes otherwise).
 */
export function checkRawSize(what: string, byteLength: number, datatype: string, shape: readonly number[], elements: number): void {
  const type = rawDatatype(datatype) as RawDatatype;
  const expected = elements * type.bytes;
  if (byteLength !== expected) {
    throw new InvalidInputError(`${what} has ${byteLength} bytes; shape [${shape.join(', ')}] of ${datatype} needs ${elements} x ${type.bytes} = ${expected}`);
  }
}

/**
 * Raw little-endian bytes as one flat array of the element values. FP32 on a little-endian machine is not
 * converted at all: a Float32Array over the same memory when the bytes start on a 4-byte boundary, else one
 * copy (a protobuf or HTTP body slice may start anywhere). Other datatypes are read element by element.
 * The bytes must already be the right size ({@link checkRawSize}).
 */
export function rawValues(bytes: Uint8Array, datatype: string, elements: number): ArrayLike<number> {
  if (datatype === 'FP32' && littleEndian) {
    if (bytes.byteOffset % 4 === 0) return new Float32Array(bytes.buffer, bytes.byteOffset, elements);
    const out = new Float32Array(elements);
    new Uint8Array(out.buffer).set(bytes);
    return out;
  }
  const type = rawDatatype(datatype) as RawDatatype;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float64Array(elements);
  for (let i = 0; i < elements; i++) out[i] = type.read(view, i);
  return out;
}

/** Output rows of equal width as one FP32 tensor's little-endian bytes. */
export function rowsToBytes(rows: readonly Float32Array[], width: number): Buffer {
  const all = new Float32Array(rows.length * width);
  for (let r = 0; r < rows.length; r++) all.set(rows[r] as Float32Array, r * width);
  const bytes = Buffer.from(all.buffer);
  if (!littleEndian) bytes.swap32();
  return bytes;
}
