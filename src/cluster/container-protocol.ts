/**
 * The model container protocol over NATS: subjects, the discovery bucket, its keys and the heartbeat entry.
 * Pure: names and types only. The batch payload itself is the binary frame of actors/worker/batch-frame.ts.
 * README, "Running on more than one machine", says the same for containers written in other languages.
 */

/** Subjects a container answers batches on: `clipper.v1.infer.<model>.<version>.<container-id>`. */
export const INFER_SUBJECT_PREFIX = 'clipper.v1.infer';

/** The JetStream key-value bucket containers announce themselves in. */
export const CONTAINERS_BUCKET = 'clipper-containers';

/** How long an announcement lives without a heartbeat (the bucket's max age), ms. */
export const DEFAULT_CONTAINER_TTL_MS = 3_000;

/** A container re-announces itself this often: a third of the entry's life, so one lost beat is harmless. */
export const heartbeatEveryMs = (ttlMs: number): number => Math.max(100, Math.floor(ttlMs / 3));

/**
 * A model name or version as one subject token and key part: letters, digits, `_` and `-` stay; any other
 * character (a model name may hold `.`) becomes `=` and its two hex digits (`mnist.v2` -> `mnist=2Ev2`).
 */
export function encodeToken(name: string): string {
  return [...name].map((c) => (/^[A-Za-z0-9_-]$/.test(c) ? c : [...Buffer.from(c, 'utf8')].map((b) => `=${b.toString(16).toUpperCase().padStart(2, '0')}`).join(''))).join('');
}

export function inferSubject(model: string, version: string, containerId: string): string {
  return `${INFER_SUBJECT_PREFIX}.${encodeToken(model)}.${encodeToken(version)}.${containerId}`;
}

/** The container's key in {@link CONTAINERS_BUCKET}: `<model>.<version>.<container-id>`. */
export function containerKey(model: string, version: string, containerId: string): string {
  return `${encodeToken(model)}.${encodeToken(version)}.${containerId}`;
}

/** A container id: lower-case letters and digits, 1-32 (one subject token, one key part). */
export const CONTAINER_ID = /^[a-z0-9]{1,32}$/;

/** What a container puts in its bucket entry (UTF-8 JSON), on start and on every heartbeat. */
export interface ContainerAnnouncement {
  /** Protocol version: 1. */
  protocol: 1;
  id: string;
  model: string;
  version: string;
  /** Where it answers batches. */
  subject: string;
  inputDtype: 'float32' | 'int32';
  /** One query's shape, no batch dimension. */
  featureShape: number[];
  /** Values per output row. */
  outputSize: number;
  /** Informational: where and since when. */
  host: string;
  pid: number;
  startedAt: string;
  heartbeatMs: number;
  batches: number;
}

/** Reads an announcement, or undefined when it is not one (another writer's junk must not break discovery). */
export function parseAnnouncement(bytes: Uint8Array): ContainerAnnouncement | undefined {
  try {
    const value = JSON.parse(Buffer.from(bytes).toString('utf8')) as Partial<ContainerAnnouncement>;
    if (value.protocol !== 1 || typeof value.id !== 'string' || typeof value.subject !== 'string' || typeof value.model !== 'string' || typeof value.version !== 'string') return undefined;
    if (!Array.isArray(value.featureShape) || (value.inputDtype !== 'float32' && value.inputDtype !== 'int32')) return undefined;
    return value as ContainerAnnouncement;
  } catch {
    return undefined;
  }
}
