// Typed errors with one exit-code table. Library code throws these; only src/cli/main.ts turns
// them into exit codes and messages.

/** The one table of exit codes. Documented in the README; never reuse a number for another meaning. */
export const ExitCode = {
  ok: 0,
  internal: 1,
  usage: 2,
  notFound: 3,
  auth: 4,
  integrity: 5,
  network: 6,
  findings: 7,
  conflict: 8,
  interrupted: 130,
} as const;
export type ExitCodeName = keyof typeof ExitCode;

export interface AirlockErrorOptions {
  cause?: unknown;
  /** What the user can do about it, printed after the message. */
  hint?: string;
}

export class AirlockError extends Error {
  /** Stable, machine-readable code (e.g. `MANIFEST_UNKNOWN`, `DIGEST_MISMATCH`), printed with --json. */
  readonly code: string;
  readonly exitCode: number;
  readonly hint: string | undefined;
  /** Set by copyGraph: whether the copy's source or its destination failed. */
  side?: 'source' | 'destination';

  constructor(code: string, exit: ExitCodeName, message: string, options: AirlockErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = ExitCode[exit];
    this.hint = options.hint;
  }
}

/** Bad flags, bad arguments, a spec or lock that does not parse or does not match. */
export class UsageError extends AirlockError {
  constructor(message: string, options: AirlockErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'USAGE', 'usage', message, options);
  }
}

/** Something named does not exist: an image, a tag, a file, a blob. */
export class NotFoundError extends AirlockError {
  constructor(message: string, options: AirlockErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'NOT_FOUND', 'notFound', message, options);
  }
}

/** Credentials missing or refused, or a permission denied. */
export class AuthError extends AirlockError {
  constructor(message: string, options: AirlockErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'UNAUTHORIZED', 'auth', message, options);
  }
}

/** Content that is not what it claims: wrong digest or size, truncated, malformed, unsafe. */
export class IntegrityError extends AirlockError {
  constructor(message: string, options: AirlockErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'INTEGRITY', 'integrity', message, options);
  }
}

/** Could not talk to a host: refused, reset, DNS, TLS, timeouts, retries exhausted. */
export class NetworkError extends AirlockError {
  constructor(message: string, options: AirlockErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'NETWORK', 'network', message, options);
  }
}

/** Two things that cannot both be true: two sources mapped to one target, an immutable tag. */
export class ConflictError extends AirlockError {
  constructor(message: string, options: AirlockErrorOptions & { code?: string } = {}) {
    super(options.code ?? 'CONFLICT', 'conflict', message, options);
  }
}

/** The operation was aborted (Ctrl-C, timeout). */
export class AbortedError extends AirlockError {
  constructor(message = 'interrupted', options: AirlockErrorOptions = {}) {
    super('ABORTED', 'interrupted', message, options);
  }
}

/** One entry of an OCI distribution error body (`{"errors":[{code,message,detail}]}`). */
export interface OciErrorEntry {
  code: string;
  message?: string;
  detail?: unknown;
}

/**
 * A registry answered with an error status. Keeps the HTTP status, the OCI error list and the
 * URL with credentials removed. The exit code follows the status (401/403 auth, 404 not found…).
 */
export class RegistryError extends AirlockError {
  readonly status: number;
  readonly errors: OciErrorEntry[];
  readonly url: string;

  constructor(
    message: string,
    details: { status: number; errors?: OciErrorEntry[]; url: string },
    options: AirlockErrorOptions = {},
  ) {
    const first = details.errors?.[0]?.code;
    super(first ?? `HTTP_${details.status}`, exitForStatus(details.status), message, options);
    this.status = details.status;
    this.errors = details.errors ?? [];
    this.url = details.url;
  }
}

function exitForStatus(status: number): ExitCodeName {
  if (status === 401 || status === 403) return 'auth';
  if (status === 404) return 'notFound';
  if (status === 409 || status === 412) return 'conflict';
  if (status === 400 || status === 405 || status === 413 || status === 415) return 'usage';
  if (status === 429 || status >= 500) return 'network';
  return 'internal';
}

export function isAirlockError(e: unknown): e is AirlockError {
  return e instanceof AirlockError;
}

/** Throw AbortedError if the signal fired; call at loop heads in long work. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError('interrupted', { cause: signal.reason });
}
