/**
 * Where the control-plane state is kept: a local file (a server on its own) or a JetStream key-value entry
 * (frontends sharing NATS, kv-state-store.ts). Both write with compare-and-set on a revision, so an admin call
 * that raced another and lost is refused (409) instead of overwriting it.
 */
import { mkdirSync, readFileSync, renameSync, rmSync, openSync, writeSync, fsyncSync, closeSync } from 'node:fs';
import path from 'node:path';
import { StateConflictError } from '../../errors.js';
import { decodeState, encodeState, type ControlState } from './control-state.js';

export { StateConflictError };

export interface StoredState {
  state: ControlState | undefined;
  /** The stored revision; 0 when nothing is stored yet. */
  revision: number;
}

export interface StateStore {
  /** Where the state lives, for logs and errors. */
  readonly where: string;
  read(): Promise<StoredState>;
  /**
   * Stores `state` if the stored revision is still `revision` (0: only if nothing is stored) and returns the new
   * revision; throws {@link StateConflictError} when someone else wrote first.
   */
  write(state: ControlState, revision: number): Promise<number>;
  /** Calls `listener` with every change stored by anyone after this call (stores shared by several frontends). */
  watch?(listener: (stored: StoredState & { state: ControlState }) => void): void;
  close(): Promise<void>;
}

/**
 * The state in one local file, replaced atomically: written in full to a temporary file beside it, flushed to
 * disk, then renamed over it, so a crash leaves the old state or the new, never half of one. One server owns
 * the file; the revision counts its writes since it started.
 */
export class FileStateStore implements StateStore {
  readonly where: string;
  #revision = 0;

  constructor(file: string) {
    this.where = path.resolve(file);
  }

  async read(): Promise<StoredState> {
    let text: string;
    try {
      text = readFileSync(this.where, 'utf8');
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { state: undefined, revision: this.#revision };
      throw error;
    }
    if (this.#revision === 0) this.#revision = 1;
    return { state: decodeState(text, `state file ${this.where}`), revision: this.#revision };
  }

  async write(state: ControlState, revision: number): Promise<number> {
    if (revision !== this.#revision) throw new StateConflictError(`the state in ${this.where} changed (revision ${this.#revision}, expected ${revision}); read it again and retry`);
    mkdirSync(path.dirname(this.where), { recursive: true });
    const temporary = `${this.where}.${process.pid}.tmp`;
    try {
      const fd = openSync(temporary, 'w', 0o600);
      try {
        writeSync(fd, encodeState(state));
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temporary, this.where);
    } catch (error) {
      rmSync(temporary, { force: true });
      throw error;
    }
    this.#revision = Math.max(this.#revision, 1) + 1;
    return this.#revision;
  }

  async close(): Promise<void> {}
}

/** The state in memory only: a server started without a state file or NATS (it starts as configured each time). */
export class MemoryStateStore implements StateStore {
  readonly where = 'memory';
  #stored: StoredState = { state: undefined, revision: 0 };

  async read(): Promise<StoredState> {
    return this.#stored;
  }

  async write(state: ControlState, revision: number): Promise<number> {
    if (revision !== this.#stored.revision) throw new StateConflictError(`the state changed (revision ${this.#stored.revision}, expected ${revision})`);
    this.#stored = { state, revision: revision + 1 };
    return revision + 1;
  }

  async close(): Promise<void> {}
}
