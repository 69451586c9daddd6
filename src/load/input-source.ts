import { readFileSync } from 'node:fs';
import { digit, loadMnist } from '../index.js';
import { seededUniform } from './arrivals.js';

/** Which input a query carries: one of the base inputs, with `tag` > 0 marking a distinct variant of it. */
export interface InputRef {
  readonly base: number;
  readonly tag: number;
  /** True when this input was sent before (a deliberate repeat, to exercise the cache). */
  readonly repeat: boolean;
}

export interface InputSourceOptions {
  /** Share of queries, in [0, 1], that repeat an input sent recently. Default 0. */
  repeatShare?: number;
  /**
   * Once every base input has been sent, make later ones distinct anyway by writing a tiny tag into value 0
   * (so a cache cannot answer them). Only where value 0 is 0 in every input, as MNIST's corner pixel is;
   * off for inputs from a file, which are sent as they are. Default true.
   */
  tagRepeats?: boolean;
  seed?: number;
}

/** How many recent fresh inputs a repeat draws from: small enough that an LRU cache of modest size holds them. */
const RECENT = 1024;
/** Tag step: exact in float32 (a power of two), so the JSON text and the Float32Array carry the same number. */
const TAG_STEP = 1 / 65536;

/**
 * The inputs a load test sends: real held-out MNIST digits by default, or rows from a JSON file. Each query
 * is fresh (the next input, distinct from all before it while `tagRepeats` holds) or, with probability
 * `repeatShare`, a repeat of one of the last 1,024 fresh inputs. Bodies are built from JSON text prepared
 * once per base input, so the generator spends no time in JSON.stringify on the hot path.
 */
export class InputSource {
  readonly #rows: Float32Array[];
  readonly #json: string[];
  /** Each base row's JSON from the second value on (`,v1,...]`), to prepend a tagged first value. */
  readonly #tail: string[];
  readonly #repeatShare: number;
  readonly #tagRepeats: boolean;
  readonly #uniform: () => number;
  readonly #recent: InputRef[] = [];
  #fresh = 0;

  constructor(rows: Float32Array[], options: InputSourceOptions = {}) {
    if (rows.length === 0) throw new RangeError('an input source needs at least one input');
    const width = rows[0]?.length ?? 0;
    for (const [i, row] of rows.entries()) {
      if (row.length !== width || width === 0) throw new RangeError(`input ${i} has ${row.length} values; every input must have ${width} (> 0)`);
    }
    const share = options.repeatShare ?? 0;
    if (!(share >= 0 && share <= 1)) throw new RangeError(`repeatShare must be in [0, 1]; got ${share}`);
    this.#rows = rows;
    this.#json = rows.map((r) => JSON.stringify(Array.from(r)));
    this.#tail = this.#json.map((j) => {
      const comma = j.indexOf(',');
      return comma < 0 ? ']' : j.slice(comma);
    });
    this.#repeatShare = share;
    // Tagging overwrites value 0, so it is used only where value 0 is 0 in every input (MNIST's corner pixel).
    this.#tagRepeats = (options.tagRepeats ?? true) && rows.every((r) => r[0] === 0);
    this.#uniform = seededUniform((options.seed ?? 1) ^ 0x5bd1e995);
  }

  /** The real held-out MNIST test digits (2,000, never seen in training). */
  static mnist(options: InputSourceOptions = {}): InputSource {
    const { test } = loadMnist();
    return new InputSource(Array.from({ length: test.count }, (_, i) => digit(test, i)), options);
  }

  /** Rows laid end to end in one array (as MNIST's are), `width` values each. */
  static fromMatrix(values: Float32Array, width: number, options: InputSourceOptions = {}): InputSource {
    if (!Number.isInteger(width) || width <= 0 || values.length % width !== 0 || values.length === 0) {
      throw new RangeError(`an input matrix of ${values.length} values cannot be cut into rows of ${width}`);
    }
    return new InputSource(Array.from({ length: values.length / width }, (_, i) => values.subarray(i * width, (i + 1) * width)), options);
  }

  /**
   * Inputs from a JSON file: an array of rows (`[[...], ...]`), or `{"inputs": [[...], ...]}`. Sent as they
   * are: repeats are not tagged.
   */
  static fromFile(file: string, options: InputSourceOptions = {}): InputSource {
    let parsed: unknown;
    try {
      parsed = JSON.parse(readFileSync(file, 'utf8'));
    } catch (error) {
      throw new RangeError(`inputs file ${file} could not be read as JSON: ${(error as Error).message}`);
    }
    const list = Array.isArray(parsed) ? parsed : (parsed as { inputs?: unknown } | null)?.inputs;
    if (!Array.isArray(list) || list.length === 0) throw new RangeError(`inputs file ${file} must hold a non-empty array of rows, or {"inputs": [...]}`);
    const rows = list.map((row, i) => {
      if (!Array.isArray(row) || !row.every((v) => typeof v === 'number' && Number.isFinite(v))) {
        throw new RangeError(`inputs file ${file}: row ${i} must be an array of finite numbers`);
      }
      return Float32Array.from(row as number[]);
    });
    return new InputSource(rows, { tagRepeats: false, ...options });
  }

  get size(): number {
    return this.#rows.length;
  }

  get width(): number {
    return this.#rows[0]?.length ?? 0;
  }

  /** The next query's input. */
  next(): InputRef {
    if (this.#recent.length > 0 && this.#repeatShare > 0 && this.#uniform() < this.#repeatShare) {
      const pick = this.#recent[Math.floor(this.#uniform() * this.#recent.length)] as InputRef;
      return { base: pick.base, tag: pick.tag, repeat: true };
    }
    const k = this.#fresh++;
    const base = k % this.#rows.length;
    const pass = Math.floor(k / this.#rows.length);
    // Past 65,535 passes the tag would leave [0, 1); wrap round (repeats then, after 131 million MNIST queries).
    const tag = this.#tagRepeats ? pass % 65536 : 0;
    const ref: InputRef = { base, tag, repeat: false };
    if (this.#recent.length < RECENT) this.#recent.push(ref);
    else this.#recent[k % RECENT] = ref;
    return ref;
  }

  /** The input as JSON array text. */
  json(ref: InputRef): string {
    if (ref.tag === 0) return this.#json[ref.base] as string;
    return `[${ref.tag * TAG_STEP}${this.#tail[ref.base] as string}`;
  }

  /**
   * A builder of whole request bodies (`prefix`, the input's JSON array, `suffix`) as Buffers, encoded once
   * per base input: each body is a copy of its base's bytes with the tag written into a fixed-width first
   * value, so the hot path neither stringifies nor encodes 4 KB of text per query.
   */
  bodies(prefix: string, suffix: string): (ref: InputRef) => Buffer {
    if (!this.#tagRepeats) {
      const encoded = this.#json.map((j) => Buffer.from(prefix + j + suffix));
      return (ref) => encoded[ref.base] as Buffer;
    }
    // The tag, pass / 65536, has at most 16 decimals: toFixed(16) writes it exactly, always 18 characters.
    const width = 18;
    const at = Buffer.byteLength(prefix) + 1;
    const templates = this.#tail.map((tail) => Buffer.from(`${prefix}[${(0).toFixed(16)}${tail}${suffix}`));
    return (ref) => {
      const template = templates[ref.base] as Buffer;
      if (ref.tag === 0) return template;
      const body = Buffer.allocUnsafe(template.length);
      template.copy(body);
      body.write((ref.tag * TAG_STEP).toFixed(16), at, width, 'latin1');
      return body;
    };
  }

  /** The input as floats (a fresh copy when tagged; the shared row otherwise: do not write to it). */
  floats(ref: InputRef): Float32Array {
    const row = this.#rows[ref.base] as Float32Array;
    if (ref.tag === 0) return row;
    const copy = Float32Array.from(row);
    copy[0] = ref.tag * TAG_STEP;
    return copy;
  }
}
