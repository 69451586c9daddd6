/**
 * A small client of a running server's admin port (Clipper's management API under `/admin/` and the Open
 * Inference Protocol's repository extension), for `clipper-ts admin` and `clipper-ts deploy`. It speaks HTTP
 * only, so it works against a server on another machine as well as one on this one.
 */

/** Where the admin API is and how to get in. */
export interface AdminTarget {
  /** e.g. `http://127.0.0.1:1338` */
  url: string;
  token?: string;
  /** Bound on one call (ms). */
  timeoutMs?: number;
}

/** Why an admin call failed, with the exit code the CLI returns for it. */
export class AdminCallError extends Error {
  override readonly name = 'AdminCallError';
  /** HTTP status, or 0 when the server could not be reached. */
  readonly status: number;
  /** The server's error code (`UNKNOWN_MODEL`, ...), when it sent one. */
  readonly code: string | undefined;

  constructor(message: string, status: number, code: string | undefined, options?: { cause?: unknown }) {
    super(message, options);
    this.status = status;
    this.code = code;
  }

  /** The CLI's exit code for this failure (see {@link exitCodes}). */
  get exitCode(): number {
    if (this.status === 0) return exitCodes.unreachable;
    if (this.status === 401) return exitCodes.unauthorized;
    if (this.status === 404) return exitCodes.notFound;
    if (this.status === 409) return exitCodes.conflict;
    if (this.status >= 500) return exitCodes.serverError;
    return exitCodes.refused;
  }
}

/** Exit codes of `clipper-ts admin` and `clipper-ts deploy`: scripts can tell failures apart. */
export const exitCodes = Object.freeze({
  ok: 0,
  /** The server refused the request (HTTP 400, or 403 for a path outside its model repository). */
  refused: 1,
  /** The command line was wrong (unknown command, missing argument): nothing was sent. */
  usage: 2,
  /** No server answered at the URL (connection refused, timeout). */
  unreachable: 3,
  /** The application, model or version does not exist (HTTP 404). */
  notFound: 4,
  /** It already exists, or a concurrent change won (HTTP 409). */
  conflict: 5,
  /** The admin token is missing or wrong (HTTP 401). */
  unauthorized: 6,
  /** The server failed or is overloaded (HTTP 5xx). */
  serverError: 7,
});

/** Calls one admin route: POST with a JSON body (an empty object when none), and returns the parsed JSON answer. */
export async function adminCall(target: AdminTarget, route: string, body: unknown = {}): Promise<unknown> {
  const url = `${target.url.replace(/\/+$/, '')}${route.startsWith('/') ? route : `/admin/${route}`}`;
  let response: Response;
  try {
    response = await fetch(url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...(target.token === undefined ? {} : { authorization: `Bearer ${target.token}` }) },
      body: JSON.stringify(body),
      signal: AbortSignal.timeout(target.timeoutMs ?? 60_000),
    });
  } catch (error) {
    const reason = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
    throw new AdminCallError(`no clipper-ts admin API answered at ${target.url} (${reason}); is the server running, and is --url its admin port?`, 0, undefined, {
      cause: error,
    });
  }
  const text = await response.text();
  let parsed: unknown;
  try {
    parsed = text === '' ? null : JSON.parse(text);
  } catch {
    parsed = text;
  }
  if (!response.ok) {
    const fields = typeof parsed === 'object' && parsed !== null ? (parsed as { error?: unknown; message?: unknown; code?: unknown }) : {};
    const message = String(fields.error ?? fields.message ?? text) || `HTTP ${response.status}`;
    throw new AdminCallError(message, response.status, typeof fields.code === 'string' ? fields.code : undefined);
  }
  return parsed;
}

/**
 * node:util's parseArgs reads `--default-output -1` as a flag without its value; joins such pairs into
 * `--default-output=-1` so negative numbers work as users type them.
 */
export function joinNegativeValues(args: readonly string[], flags: ReadonlySet<string>): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i] as string;
    const next = args[i + 1];
    if (arg.startsWith('--') && flags.has(arg.slice(2)) && next !== undefined && /^-\d/.test(next)) {
      out.push(`${arg}=${next}`);
      i++;
    } else out.push(arg);
  }
  return out;
}
