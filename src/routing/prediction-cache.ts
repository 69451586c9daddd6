import { xxh3 } from '@node-rs/xxhash';

/** One model's answer to one input. */
export interface Prediction {
  /** The model's output row (probabilities for a classifier). */
  readonly scores: Float32Array;
  readonly model: string;
  readonly version: string;
}

/** How a lookup was served, for metrics. */
export type CacheOutcome = 'hit' | 'miss' | 'shared' | 'disabled';

/**
 * The 128-bit XXH3 of an input's bytes (only the view's bytes, not its whole buffer), as 32 hex digits.
 *
 * Why 128 bits are enough to key answers without keeping the input: XXH3-128 passes SMHasher's collision
 * tests, so for n distinct inputs the chance that any two share a digest is about n^2 / 2^129. Even 2^32
 * distinct inputs (a year at 100 queries/s) give 2^-65, far below the chance of a bit flip in RAM. The
 * digest is not cryptographic: a client who can choose inputs to collide on purpose can make another of its
 * own inputs answer like the first, which is no worse than sending that first input.
 */
export function inputDigest(input: ArrayBufferView): string {
  return xxh3.xxh128(Buffer.from(input.buffer, input.byteOffset, input.byteLength)).toString(16).padStart(32, '0');
}

/**
 * The cache key: model, version and a digest of the input's bytes. The version is in the key, so rolling a
 * model forward or back never serves the other version's answers. A query asking several models hashes its
 * input once ({@link inputDigest}) and builds each model's key from that digest. The key is a short-lived
 * string: the cache keeps only the digest's four 32-bit words and a small number for `model@version`.
 */
export function predictionKey(model: string, version: string, input: ArrayBufferView | string): string {
  return `${model}@${version}#${typeof input === 'string' ? input : inputDigest(input)}`;
}

/**
 * Words of one entry's record besides its scores: the digest (4), the partition (model@version, 1) and the
 * LRU links (previous, next: 2). Every word is 4 bytes; a score is a float32.
 */
const HEADER_WORDS = 7;
const PART = 4;
const PREV = 5;
const NEXT = 6;
/** An entry id is `chunk << REC_BITS | record`; ids stay small integers (no heap number, no allocation). */
const REC_BITS = 17;
const REC_MASK = (1 << REC_BITS) - 1;
const MAX_CHUNKS = 1 << 13;
/** Chunks are a sixteenth of the bound, at most 4 MiB: few large allocations, and few enough records per chunk. */
const MAX_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * The bytes one cached entry of `width` scores costs: its record (28 bytes + 4 per score) plus its slots in
 * the index (4 bytes per slot, 2 to 4 slots per record, so 8-16 bytes). For a 10-class classifier: 68 + 8..16
 * bytes, about 80: a 64 MiB cache holds about 800,000 MNIST answers.
 */
export function recordBytes(width: number): number {
  return (HEADER_WORDS + width) * 4;
}

/** A large typed-array slab of records of one width, with its own free list. */
interface Chunk {
  readonly index: number;
  readonly width: number;
  readonly words: number;
  readonly capacity: number;
  readonly i32: Int32Array;
  readonly f32: Float32Array;
  readonly bytes: number;
  /** Records never used yet start at `used`; freed ones are linked through their NEXT word. */
  used: number;
  freeHead: number;
  live: number;
}

interface Partition {
  readonly id: number;
  readonly model: string;
  readonly version: string;
}

interface Pending {
  readonly promise: Promise<Prediction>;
}

/**
 * The prediction cache (Clipper, section 4.2), bounded in bytes that are really held.
 *
 * Layout (issue 15): an entry is no object at all but a record in a large typed-array slab (a "chunk" of
 * records with the same number of scores): four words of the input's 128-bit digest, a small number for
 * model@version, the LRU list's links and the scores. An open-addressing index (one Int32Array) maps a
 * digest to its record. Everything the cache holds lives in these arrays, so `heldBytes` is what it really
 * costs (a few hundred bytes of bookkeeping aside) and never exceeds `maxBytes`: a new chunk (or a larger
 * index) is allocated only while the total stays within the bound; past it, the least recently used entries
 * are evicted and their records reused. The slabs are off the V8 heap, so the garbage collector never walks
 * the entries: a full cache adds nothing to GC pauses.
 *
 * Concurrent identical queries share one pending evaluation; a failed evaluation is not cached, so the next
 * query tries again. A hit answers a fresh copy of the scores: nothing the caller keeps points into a slab.
 *
 * @example
 * const cache = new PredictionCache(64 * 1024 * 1024);
 * const { prediction, outcome } = await cache.getOrEvaluate(predictionKey('mnist', '1', input), () => runModel(input));
 */
export class PredictionCache {
  readonly maxBytes: number;
  readonly #chunkTarget: number;
  readonly #chunks: (Chunk | undefined)[] = [];
  readonly #byWidth = new Map<number, Chunk[]>();
  readonly #partitions = new Map<string, Partition>();
  readonly #partitionById: Partition[] = [];
  readonly #pending = new Map<string, Pending>();
  #index = new Int32Array(0);
  #capacity = 0;
  #chunkBytes = 0;
  #head = -1;
  #tail = -1;
  #entries = 0;
  #entryBytes = 0;
  /** The digest of the key being looked up, parsed once per lookup into these four words. */
  readonly #h = new Int32Array(4);
  hits = 0;
  misses = 0;
  shared = 0;
  evictions = 0;
  /** Joiners that looked again after the evaluation they shared failed (see {@link getOrEvaluate}). */
  rejoined = 0;

  constructor(maxBytes: number) {
    this.maxBytes = maxBytes > 0 ? maxBytes : 0;
    this.#chunkTarget = Math.max(1, Math.min(MAX_CHUNK_BYTES, Math.floor(this.maxBytes / 16)));
  }

  get enabled(): boolean {
    return this.maxBytes > 0;
  }

  /**
   * Entries held; `bytes` their records count for; `heldBytes` all the cache's slabs and its index, allocated
   * (what it really costs, always <= maxBytes).
   */
  get size(): { entries: number; bytes: number; heldBytes: number } {
    return { entries: this.#entries, bytes: this.#entryBytes, heldBytes: this.#chunkBytes + this.#index.byteLength };
  }

  /**
   * Returns the cached prediction for `key`, joins a pending evaluation of it, or runs `evaluate` and caches
   * its result.
   *
   * A joiner shares the pending evaluation's fate, and that evaluation runs under the first caller's deadline,
   * not the joiner's. So when a shared evaluation fails and `retryShared(error)` says the failure was the
   * first caller's alone (refused at admission, or expired: the router passes "an overload or a deadline
   * error, and my own deadline has not passed"), the joiner looks the key up again: it runs `evaluate` itself,
   * under its own deadline, or joins the evaluation another joiner started first (and may look again if that
   * one fails too). An evaluation a caller ran itself is never retried: its failure is its own answer. This
   * cannot loop: every retry round is led by a different caller, who then leaves the round with its own
   * result. Without `retryShared`, joiners fail with the evaluation they joined.
   */
  async getOrEvaluate(
    key: string,
    evaluate: () => Promise<Prediction>,
    retryShared?: (error: unknown) => boolean,
  ): Promise<{ prediction: Prediction; outcome: CacheOutcome }> {
    if (!this.enabled) return { prediction: await evaluate(), outcome: 'disabled' };
    const cached = this.#get(key, true);
    if (cached !== undefined) {
      this.hits++;
      return { prediction: cached, outcome: 'hit' };
    }
    const joined = this.#pending.get(key);
    if (joined !== undefined) {
      this.shared++;
      try {
        return { prediction: await joined.promise, outcome: 'shared' };
      } catch (error) {
        if (retryShared === undefined || !retryShared(error)) throw error;
        this.rejoined++;
        return this.getOrEvaluate(key, evaluate, retryShared);
      }
    }
    this.misses++;
    // The entry is stored and the pending record dropped before anyone waiting on it resumes, so a joiner
    // that looks again finds either the answer or no evaluation in flight.
    const promise = Promise.resolve()
      .then(evaluate)
      .then(
        (prediction) => {
          this.#pending.delete(key);
          if (prediction === undefined) throw new Error(`prediction cache: evaluation of ${key} produced nothing`);
          this.#put(key, prediction);
          return prediction;
        },
        (error: unknown) => {
          this.#pending.delete(key);
          throw error;
        },
      );
    this.#pending.set(key, { promise });
    return { prediction: await promise, outcome: 'miss' };
  }

  /** The cached prediction, if any, without evaluating or refreshing its recency (feedback uses this). */
  peek(key: string): Prediction | undefined {
    return this.enabled ? this.#get(key, false) : undefined;
  }

  /** Drops every entry and gives the slabs back. Evaluations in flight still store their answers. */
  clear(): void {
    this.#chunks.length = 0;
    this.#byWidth.clear();
    this.#index = new Int32Array(0);
    this.#capacity = 0;
    this.#chunkBytes = 0;
    this.#head = this.#tail = -1;
    this.#entries = 0;
    this.#entryBytes = 0;
  }

  /** Parses `key` into its partition and the digest words in #h; undefined for a model@version never stored. */
  #parse(key: string, create: boolean): Partition | undefined {
    const hash = key.lastIndexOf('#');
    const name = hash < 0 ? key : key.slice(0, hash);
    let partition = this.#partitions.get(name);
    if (partition === undefined) {
      if (!create) return undefined;
      const at = name.lastIndexOf('@');
      partition = { id: this.#partitionById.length, model: name.slice(0, at), version: name.slice(at + 1) };
      this.#partitions.set(name, partition);
      this.#partitionById.push(partition);
    }
    const h = this.#h;
    if (hash >= 0 && key.length - hash - 1 === 32) {
      let ok = true;
      for (let w = 0; w < 4; w++) {
        let word = 0;
        for (let c = 0; c < 8; c++) {
          const d = hexValue(key.charCodeAt(hash + 1 + w * 8 + c));
          if (d < 0) ok = false;
          word = (word << 4) | d;
        }
        h[w] = word;
      }
      if (ok) return partition;
    }
    // A digest that is not ours (any other string) is hashed: the key still works, only more slowly.
    const big = xxh3.xxh128(key);
    for (let w = 0; w < 4; w++) h[w] = Number((big >> BigInt(96 - 32 * w)) & 0xffffffffn) | 0;
    return partition;
  }

  #home(part: number, h0: number): number {
    return (h0 ^ Math.imul(part + 1, 0x9e3779b1)) & (this.#index.length - 1);
  }

  /** The slot in the index holding the entry for (partition, #h), or the empty slot where it would go. */
  #slot(part: number): number {
    const index = this.#index;
    const mask = index.length - 1;
    const h = this.#h;
    for (let s = this.#home(part, h[0] as number); ; s = (s + 1) & mask) {
      const v = index[s] as number;
      if (v === 0) return s;
      const id = v - 1;
      const chunk = this.#chunks[id >>> REC_BITS] as Chunk;
      const base = (id & REC_MASK) * chunk.words;
      const r = chunk.i32;
      if (r[base] === h[0] && r[base + 1] === h[1] && r[base + 2] === h[2] && r[base + 3] === h[3] && r[base + PART] === part) return s;
    }
  }

  #get(key: string, touch: boolean): Prediction | undefined {
    if (this.#entries === 0) return undefined;
    const partition = this.#parse(key, false);
    if (partition === undefined) return undefined;
    const v = this.#index[this.#slot(partition.id)] as number;
    if (v === 0) return undefined;
    const id = v - 1;
    if (touch) {
      this.#unlink(id);
      this.#pushFront(id);
    }
    const chunk = this.#chunks[id >>> REC_BITS] as Chunk;
    const start = (id & REC_MASK) * chunk.words + HEADER_WORDS;
    return { scores: chunk.f32.slice(start, start + chunk.width), model: partition.model, version: partition.version };
  }

  #put(key: string, prediction: Prediction): void {
    const width = prediction.scores.length;
    const partition = this.#parse(key, true) as Partition;
    if (this.#index.length > 0) {
      const v = this.#index[this.#slot(partition.id)] as number;
      // Stored meanwhile under another spelling of the same digest (upper-case hex): keep the first answer.
      if (v !== 0) return;
    }
    const id = this.#allocate(width);
    if (id < 0) return;
    const chunk = this.#chunks[id >>> REC_BITS] as Chunk;
    const base = (id & REC_MASK) * chunk.words;
    // #allocate may have evicted entries and rebuilt the index; #h still holds this key's digest.
    const h = this.#h;
    chunk.i32.set(h, base);
    chunk.i32[base + PART] = partition.id;
    chunk.f32.set(prediction.scores, base + HEADER_WORDS);
    chunk.live++;
    this.#index[this.#slot(partition.id)] = id + 1;
    this.#pushFront(id);
    this.#entries++;
    this.#entryBytes += recordBytes(width);
  }

  /** A free record for `width` scores, making room within the bound; -1 when it cannot be cached at all. */
  #allocate(width: number): number {
    const words = HEADER_WORDS + width;
    // At most 2^17 records per chunk, so that an id (chunk << 17 | record) stays a small integer.
    const capacity = Math.min(REC_MASK + 1, Math.max(1, Math.floor(this.#chunkTarget / (words * 4))));
    const bytes = capacity * words * 4;
    // Even alone, such a chunk and its index would not fit: answer without caching, evict nothing.
    if (bytes + indexLength(capacity) * 4 > this.maxBytes) return -1;
    const saved = Int32Array.from(this.#h);
    for (;;) {
      const chunks = this.#byWidth.get(width);
      if (chunks !== undefined) {
        for (const chunk of chunks) {
          if (chunk.freeHead >= 0) {
            const rec = chunk.freeHead;
            chunk.freeHead = chunk.i32[rec * chunk.words + NEXT] as number;
            this.#h.set(saved);
            return (chunk.index << REC_BITS) | rec;
          }
          if (chunk.used < chunk.capacity) {
            this.#h.set(saved);
            return (chunk.index << REC_BITS) | chunk.used++;
          }
        }
      }
      // The index is sized for the chunks it serves, so it shrinks too once chunks of other widths were given
      // back: otherwise an index grown for many small records would keep their bytes from a wider answer,
      // which would then evict everything and still not fit.
      const newLength = indexLength(this.#capacity + capacity);
      const fits = this.#chunkBytes + bytes + newLength * 4 <= this.maxBytes;
      const slot = this.#chunks.indexOf(undefined);
      const at = slot < 0 ? this.#chunks.length : slot;
      if (fits && at < MAX_CHUNKS) {
        const buffer = new ArrayBuffer(bytes);
        const chunk: Chunk = { index: at, width, words, capacity, i32: new Int32Array(buffer), f32: new Float32Array(buffer), bytes, used: 0, freeHead: -1, live: 0 };
        this.#chunks[at] = chunk;
        this.#byWidth.set(width, [...(chunks ?? []), chunk]);
        this.#capacity += capacity;
        this.#chunkBytes += bytes;
        if (newLength !== this.#index.length) this.#rebuildIndex(newLength);
        continue;
      }
      if (this.#tail < 0) {
        this.#h.set(saved);
        return -1;
      }
      this.#evict(this.#tail, width);
    }
  }

  /** Removes entry `id`; a chunk of another width left empty is given back, so its bytes can serve `width`. */
  #evict(id: number, width: number): void {
    const chunk = this.#chunks[id >>> REC_BITS] as Chunk;
    const rec = id & REC_MASK;
    const base = rec * chunk.words;
    const r = chunk.i32;
    this.#h.set(r.subarray(base, base + 4));
    this.#removeFromIndex(this.#slot(r[base + PART] as number));
    this.#unlink(id);
    r[base + NEXT] = chunk.freeHead;
    chunk.freeHead = rec;
    chunk.live--;
    this.#entries--;
    this.#entryBytes -= recordBytes(chunk.width);
    this.evictions++;
    if (chunk.live === 0 && chunk.width !== width) {
      this.#chunks[chunk.index] = undefined;
      const rest = (this.#byWidth.get(chunk.width) ?? []).filter((c) => c !== chunk);
      if (rest.length === 0) this.#byWidth.delete(chunk.width);
      else this.#byWidth.set(chunk.width, rest);
      this.#capacity -= chunk.capacity;
      this.#chunkBytes -= chunk.bytes;
    }
  }

  /** Linear probing's backward-shift delete: no tombstones, so lookups stay short however many evictions. */
  #removeFromIndex(slot: number): void {
    const index = this.#index;
    const mask = index.length - 1;
    let hole = slot;
    index[hole] = 0;
    for (let j = (hole + 1) & mask; index[j] !== 0; j = (j + 1) & mask) {
      const id = (index[j] as number) - 1;
      const chunk = this.#chunks[id >>> REC_BITS] as Chunk;
      const base = (id & REC_MASK) * chunk.words;
      const home = this.#home(chunk.i32[base + PART] as number, chunk.i32[base] as number);
      // Move the entry at j into the hole unless its home lies cyclically in (hole, j].
      const inRange = hole <= j ? home > hole && home <= j : home > hole || home <= j;
      if (!inRange) {
        index[hole] = index[j] as number;
        index[j] = 0;
        hole = j;
      }
    }
  }

  #rebuildIndex(length: number): void {
    this.#index = new Int32Array(length);
    const h = this.#h;
    for (let id = this.#head; id >= 0; ) {
      const chunk = this.#chunks[id >>> REC_BITS] as Chunk;
      const base = (id & REC_MASK) * chunk.words;
      h.set(chunk.i32.subarray(base, base + 4));
      this.#index[this.#slot(chunk.i32[base + PART] as number)] = id + 1;
      id = chunk.i32[base + NEXT] as number;
    }
  }

  #setLink(id: number, word: number, value: number): void {
    const chunk = this.#chunks[id >>> REC_BITS] as Chunk;
    chunk.i32[(id & REC_MASK) * chunk.words + word] = value;
  }

  #link(id: number, word: number): number {
    const chunk = this.#chunks[id >>> REC_BITS] as Chunk;
    return chunk.i32[(id & REC_MASK) * chunk.words + word] as number;
  }

  #unlink(id: number): void {
    const prev = this.#link(id, PREV);
    const next = this.#link(id, NEXT);
    if (prev >= 0) this.#setLink(prev, NEXT, next);
    else this.#head = next;
    if (next >= 0) this.#setLink(next, PREV, prev);
    else this.#tail = prev;
  }

  #pushFront(id: number): void {
    this.#setLink(id, PREV, -1);
    this.#setLink(id, NEXT, this.#head);
    if (this.#head >= 0) this.#setLink(this.#head, PREV, id);
    this.#head = id;
    if (this.#tail < 0) this.#tail = id;
  }
}

/** Index slots for `records`: a power of two at least twice as many, so linear probes stay short. */
function indexLength(records: number): number {
  let length = 2;
  while (length < 2 * records) length *= 2;
  return length;
}

function hexValue(code: number): number {
  if (code >= 48 && code <= 57) return code - 48;
  if (code >= 97 && code <= 102) return code - 87;
  if (code >= 65 && code <= 70) return code - 55;
  return -1;
}
