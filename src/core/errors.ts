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
  io: 9,
  interrupted: 130,
  /** The output was closed early (`| head -1`): what a shell reports for cat there (128 + SIGPIPE). */
  closedPipe: 141,
} as const;
export type ExitCodeName = keyof typeof ExitCode;

/**
 * Every error code airlock gives (`code` of an AirlockError, `code` of the --json error event),
 * each bound to its one exit code: a code cannot exit differently in two places, because the
 * error classes below only accept the codes of their exit. Codes are stable: scripts match them.
 * A registry's own words (OCI codes such as MANIFEST_UNKNOWN, or HTTP_<status>) are not codes of
 * this table: see RegistryError.registryCode.
 */
export const ERROR_CODES = {
  // 1 — a bug, or a state airlock cannot explain.
  INTERNAL: 'internal',
  SANDBOX_SETUP: 'internal',
  REGISTRY_ANSWER_UNEXPECTED: 'internal',

  // 2 — bad flags, arguments, spec, lock, chart or input files.
  USAGE: 'usage',
  ALLOW_INVALID: 'usage',
  BUNDLE_AMBIGUOUS: 'usage',
  BUNDLE_CLOSED: 'usage',
  BUNDLE_DUPLICATE_IMAGE: 'usage',
  BUNDLE_FORMAT_UNSUPPORTED: 'usage',
  CA_UNREADABLE: 'usage',
  CACHE_ENTRY_INVALID: 'usage',
  CHART_DEPENDENCY_CYCLE: 'usage',
  CHART_DEPENDENCY_FILE: 'usage',
  CHART_DEPENDENCY_REPO_INVALID: 'usage',
  CHART_DEPENDENCY_REPO_NAME: 'usage',
  CHART_INVALID: 'usage',
  CHART_LOCK_OUT_OF_SYNC: 'usage',
  CHART_MISMATCH: 'usage',
  CHART_NAME_INVALID: 'usage',
  CHART_REPO_INVALID: 'usage',
  CHART_TAGS_UNAVAILABLE: 'usage',
  CHART_TOO_LARGE: 'usage',
  CHART_UNREADABLE: 'usage',
  CHUNK_SIZE_INVALID: 'usage',
  CIDR_INVALID: 'usage',
  CONCURRENCY_INVALID: 'usage',
  DIGEST_INVALID: 'usage',
  DOMAIN_INVALID: 'usage',
  FAIL_ON_INVALID: 'usage',
  FORMAT_INVALID: 'usage',
  HELM_FAILED: 'usage',
  HTPASSWD_INVALID: 'usage',
  HTPASSWD_UNREADABLE: 'usage',
  INPUTS_MISSING: 'usage',
  INPUT_INVALID: 'usage',
  INPUT_REMOTE: 'usage',
  INPUT_TOO_LARGE: 'usage',
  NOTE_INVALID: 'usage',
  KEY_INVALID: 'usage',
  KEY_PASSPHRASE_MISSING: 'usage',
  KEY_PASSPHRASE_WRONG: 'usage',
  KEY_UNSUPPORTED: 'usage',
  KEY_WRONG_TYPE: 'usage',
  KUBECTL_FAILED: 'usage',
  LISTEN_INVALID: 'usage',
  LOCK_INVALID: 'usage',
  LOCK_STALE: 'usage',
  MANIFEST_SCHEMA1: 'usage',
  MANIFEST_UNSUPPORTED: 'usage',
  MIRRORS_INVALID: 'usage',
  MIRRORS_PREFIX_UNSUPPORTED: 'usage',
  MIN_RATE_INVALID: 'usage',
  NOTHING_TO_EXPORT: 'usage',
  NOT_A_BUNDLE: 'usage',
  NOT_A_CHART: 'usage',
  NOT_A_REGULAR_FILE: 'usage',
  NOT_SPLIT: 'usage',
  NO_MANIFESTS: 'usage',
  PARITY_INVALID: 'usage',
  PARITY_WITHOUT_SPLIT: 'usage',
  PATH_INVALID: 'usage',
  OUTPUT_IS_INPUT: 'usage',
  PATH_IS_A_DIRECTORY: 'usage',
  PATH_NOT_A_DIRECTORY: 'usage',
  PLAIN_HTTP_REFUSED: 'usage',
  PLATFORM_INVALID: 'usage',
  PLUGINS_DIR_INVALID: 'usage',
  PREFIX_INVALID: 'usage',
  PROXY_INVALID: 'usage',
  REFERENCE_INVALID: 'usage',
  REGISTRY_REFUSED: 'usage',
  SANDBOX_UNSUPPORTED: 'usage',
  SESSION_CLOSED: 'usage',
  SET_INVALID: 'usage',
  SPEC_INVALID: 'usage',
  SPEC_NO_LOCAL_CHARTS: 'usage',
  SPLIT_INVALID: 'usage',
  TAG_INVALID: 'usage',
  TARGET_INVALID: 'usage',
  TIMEOUT_INVALID: 'usage',
  TLS_CLIENT_KEY_MISSING: 'usage',
  TLS_FILE_INVALID: 'usage',
  TLS_FILE_UNREADABLE: 'usage',
  TLS_INVALID: 'usage',
  TOOL_NOT_PINNED: 'usage',
  TOOL_PLATFORM_INVALID: 'usage',
  URL_INVALID: 'usage',
  VALUES_INVALID: 'usage',
  VALUES_WITHOUT_CHART: 'usage',
  YAML_INVALID: 'usage',

  // 3 — something named does not exist.
  NOT_FOUND: 'notFound',
  BINARY_NOT_FOUND: 'notFound',
  BLOB_UNKNOWN: 'notFound',
  BUNDLE_ENTRY_UNKNOWN: 'notFound',
  BUNDLE_NOT_FOUND: 'notFound',
  CA_NOT_FOUND: 'notFound',
  CHART_DEPENDENCY_NOT_FOUND: 'notFound',
  CHART_NOT_FOUND: 'notFound',
  CHART_REPO_NOT_FOUND: 'notFound',
  CHART_VERSION_NOT_FOUND: 'notFound',
  COMMAND_NOT_FOUND: 'notFound',
  DELTA_BASE_MISSING: 'notFound',
  FILE_NOT_FOUND: 'notFound',
  FIRST_VOLUME_MISSING: 'notFound',
  HELM_NOT_FOUND: 'notFound',
  HTPASSWD_NOT_FOUND: 'notFound',
  INPUT_NOT_FOUND: 'notFound',
  KEY_NOT_FOUND: 'notFound',
  KUBECTL_NOT_FOUND: 'notFound',
  LOCK_MISSING: 'notFound',
  MANIFEST_UNKNOWN: 'notFound',
  PLATFORM_NOT_FOUND: 'notFound',
  REGISTRY_NOT_FOUND: 'notFound',
  SANDBOX_TOOLS_MISSING: 'notFound',
  SPEC_NOT_FOUND: 'notFound',
  TLS_FILE_NOT_FOUND: 'notFound',
  TOOL_NOT_FOUND: 'notFound',
  VALUES_NOT_FOUND: 'notFound',

  // 4 — credentials missing or refused, a permission denied.
  UNAUTHORIZED: 'auth',
  ACCESS_DENIED: 'auth',
  AUTH_FILE_INVALID: 'auth',
  AUTH_FILE_UNREADABLE: 'auth',
  AUTH_REALM_INVALID: 'auth',
  AUTH_RESPONSE_INVALID: 'auth',
  AUTH_SCHEME_UNSUPPORTED: 'auth',
  CREDENTIAL_HELPER_FAILED: 'auth',
  CREDENTIAL_HELPER_INVALID: 'auth',
  CREDENTIAL_HELPER_MISSING: 'auth',
  CREDENTIAL_HELPER_TIMEOUT: 'auth',
  CREDENTIALS_MISSING: 'auth',
  CREDENTIALS_REJECTED: 'auth',
  INSECURE_BASIC_AUTH: 'auth',
  PERMISSION_DENIED: 'auth',
  PROXY_AUTH_REJECTED: 'auth',
  REGISTRY_DENIED: 'auth',
  REGISTRY_UNAUTHORIZED: 'auth',
  SANDBOX_NEEDS_ROOT: 'auth',
  TOKEN_INVALID: 'auth',
  TOKEN_REALM_INVALID: 'auth',
  TOKEN_REJECTED: 'auth',
  TOKEN_REQUEST_FAILED: 'auth',

  // 5 — content that is not what it claims.
  INTEGRITY: 'integrity',
  APPROVAL_INVALID: 'integrity',
  APPROVAL_MISSING: 'integrity',
  BLOB_UNVERIFIED: 'integrity',
  BUNDLE_INCOMPLETE: 'integrity',
  BUNDLE_INCONSISTENT: 'integrity',
  BUNDLE_MALFORMED: 'integrity',
  BUNDLE_METADATA_INVALID: 'integrity',
  CHART_ARCHIVE_INVALID: 'integrity',
  CHART_ARCHIVE_MISMATCH: 'integrity',
  CHART_ARCHIVE_TOO_LARGE: 'integrity',
  CHART_LAYERS_INVALID: 'integrity',
  CONFIG_INVALID: 'integrity',
  DIGEST_MISMATCH: 'integrity',
  INDEX_INVALID: 'integrity',
  LOCK_MISMATCH: 'integrity',
  MANIFEST_INVALID: 'integrity',
  MANIFEST_TOO_LARGE: 'integrity',
  PARITY_VOLUME_INVALID: 'integrity',
  POST_RENDER_BROKEN: 'integrity',
  RANGE_MISMATCH: 'integrity',
  REPAIR_FAILED: 'integrity',
  REPAIR_IMPOSSIBLE: 'integrity',
  SIGNATURE_INVALID: 'integrity',
  SIGNATURE_MISSING: 'integrity',
  SIZE_MISMATCH: 'integrity',
  TAR_CHECKSUM: 'integrity',
  TAR_DUPLICATE: 'integrity',
  TAR_INVALID: 'integrity',
  TAR_NOT_A_BUNDLE: 'integrity',
  TAR_TRUNCATED: 'integrity',
  TAR_UNSAFE: 'integrity',
  TAR_UNSUPPORTED: 'integrity',
  TOO_LARGE: 'integrity',
  VOLUME_MISSING: 'integrity',
  VOLUME_TABLE_INVALID: 'integrity',
  VOLUMES_INCOMPLETE: 'integrity',
  VOLUMES_MIXED: 'integrity',

  // 6 — a host could not be talked to.
  NETWORK: 'network',
  ADDRESS_DENIED: 'network',
  ADDRESS_IN_USE: 'network',
  ADDRESS_UNAVAILABLE: 'network',
  CLIENT_CLOSED: 'network',
  CONNECTION_REFUSED: 'network',
  CONNECT_TIMEOUT: 'network',
  DOWNLOAD_INTERRUPTED: 'network',
  HTTP_ERROR: 'network',
  NO_RESPONSE_HEADERS: 'network',
  PLAIN_HTTP_REDIRECT: 'network',
  PROXY_REFUSED: 'network',
  PROXY_UNREACHABLE: 'network',
  REGISTRY_UNAVAILABLE: 'network',
  STREAM_NOT_REPLAYABLE: 'network',
  TLS_PLAIN_HTTP: 'network',
  TLS_UNTRUSTED: 'network',
  TOKEN_SERVER_UNAVAILABLE: 'network',
  TOO_MANY_REDIRECTS: 'network',
  TRANSFER_STALLED: 'network',
  TRANSFER_TOO_SLOW: 'network',
  UPLOAD_SESSION_LOST: 'network',
  UPLOAD_TOO_LARGE: 'network',

  // 8 — two things that cannot both be true.
  CONFLICT: 'conflict',
  FILE_EXISTS: 'conflict',
  KEY_EXISTS: 'conflict',
  LOCK_BUSY: 'conflict',
  REGISTRY_CONFLICT: 'conflict',
  TAG_IMMUTABLE: 'conflict',
  TARGET_CONFLICT: 'conflict',

  // 9 — the local file system failed: full, read-only, broken.
  IO_ERROR: 'io',
  NO_SPACE: 'io',
  READ_ONLY_FILE_SYSTEM: 'io',
  FILE_TOO_LARGE: 'io',
  TOO_MANY_OPEN_FILES: 'io',

  // 130
  ABORTED: 'interrupted',
} as const satisfies Record<string, ExitCodeName>;
export type ErrorCode = keyof typeof ERROR_CODES;
/** The codes that exit with `E`: what each error class accepts. */
export type CodeOf<E extends ExitCodeName> = { [C in ErrorCode]: (typeof ERROR_CODES)[C] extends E ? C : never }[ErrorCode];

export interface AirlockErrorOptions {
  cause?: unknown;
  /** What the user can do about it, printed after the message. */
  hint?: string | undefined;
}

export class AirlockError<C extends ErrorCode = ErrorCode> extends Error {
  /** Stable, machine-readable code (e.g. `MANIFEST_INVALID`, `DIGEST_MISMATCH`), printed with --json. */
  readonly code: C;
  readonly exitCode: number;
  readonly hint: string | undefined;
  /** Set by copyGraph: whether the copy's source or its destination failed. */
  side?: 'source' | 'destination';

  /** `exit` must be the code's own (ERROR_CODES): written at the call site for the reader, checked by the compiler. */
  constructor(code: C, exit: (typeof ERROR_CODES)[C], message: string, options: AirlockErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.exitCode = ExitCode[exit];
    this.hint = options.hint;
  }
}

/** Bad flags, bad arguments, a spec or lock that does not parse or does not match. */
export class UsageError extends AirlockError<CodeOf<'usage'>> {
  constructor(message: string, options: AirlockErrorOptions & { code?: CodeOf<'usage'> } = {}) {
    super(options.code ?? 'USAGE', 'usage', message, options);
  }
}

/** Something named does not exist: an image, a tag, a file, a blob. */
export class NotFoundError extends AirlockError<CodeOf<'notFound'>> {
  constructor(message: string, options: AirlockErrorOptions & { code?: CodeOf<'notFound'> } = {}) {
    super(options.code ?? 'NOT_FOUND', 'notFound', message, options);
  }
}

/** Credentials missing or refused, or a permission denied. */
export class AuthError extends AirlockError<CodeOf<'auth'>> {
  constructor(message: string, options: AirlockErrorOptions & { code?: CodeOf<'auth'> } = {}) {
    super(options.code ?? 'UNAUTHORIZED', 'auth', message, options);
  }
}

/** Content that is not what it claims: wrong digest or size, truncated, malformed, unsafe. */
export class IntegrityError extends AirlockError<CodeOf<'integrity'>> {
  constructor(message: string, options: AirlockErrorOptions & { code?: CodeOf<'integrity'> } = {}) {
    super(options.code ?? 'INTEGRITY', 'integrity', message, options);
  }
}

/** Could not talk to a host: refused, reset, DNS, TLS, timeouts, retries exhausted. */
export class NetworkError extends AirlockError<CodeOf<'network'>> {
  constructor(message: string, options: AirlockErrorOptions & { code?: CodeOf<'network'> } = {}) {
    super(options.code ?? 'NETWORK', 'network', message, options);
  }
}

/** Two things that cannot both be true: two sources mapped to one target, an immutable tag. */
export class ConflictError extends AirlockError<CodeOf<'conflict'>> {
  constructor(message: string, options: AirlockErrorOptions & { code?: CodeOf<'conflict'> } = {}) {
    super(options.code ?? 'CONFLICT', 'conflict', message, options);
  }
}

/** The local file system failed under a write or read: no space, read-only, an I/O error. */
export class IoError extends AirlockError<CodeOf<'io'>> {
  constructor(message: string, options: AirlockErrorOptions & { code?: CodeOf<'io'> } = {}) {
    super(options.code ?? 'IO_ERROR', 'io', message, options);
  }
}

/** The operation was aborted (Ctrl-C, timeout). */
export class AbortedError extends AirlockError<'ABORTED'> {
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
 * URL with credentials removed. `code` (and so the exit code) follows the status (REGISTRY_NOT_FOUND
 * for 404, REGISTRY_DENIED for 403…); the registry's own word is `registryCode`, in a namespace of
 * its own: the first OCI error code of the body (MANIFEST_UNKNOWN, DENIED…), else `HTTP_<status>`.
 * Kept apart because registries use one OCI code with several statuses, and some OCI codes
 * (MANIFEST_INVALID) are also airlock's own with another meaning.
 */
export class RegistryError extends AirlockError<RegistryCode> {
  readonly status: number;
  readonly errors: OciErrorEntry[];
  readonly url: string;
  readonly registryCode: string;

  constructor(
    message: string,
    details: { status: number; errors?: OciErrorEntry[]; url: string },
    options: AirlockErrorOptions = {},
  ) {
    const code = codeForStatus(details.status);
    super(code, ERROR_CODES[code], message, options);
    this.status = details.status;
    this.errors = details.errors ?? [];
    this.url = details.url;
    this.registryCode = this.errors[0]?.code ?? `HTTP_${details.status}`;
  }
}

type RegistryCode = Extract<ErrorCode, `REGISTRY_${string}`>;

function codeForStatus(status: number): RegistryCode {
  if (status === 401) return 'REGISTRY_UNAUTHORIZED';
  if (status === 403) return 'REGISTRY_DENIED';
  if (status === 404) return 'REGISTRY_NOT_FOUND';
  if (status === 409 || status === 412) return 'REGISTRY_CONFLICT';
  if (status === 400 || status === 405 || status === 413 || status === 415) return 'REGISTRY_REFUSED';
  if (status === 429 || status >= 500) return 'REGISTRY_UNAVAILABLE';
  return 'REGISTRY_ANSWER_UNEXPECTED';
}

export function isAirlockError(e: unknown): e is AirlockError {
  return e instanceof AirlockError;
}

/** Throw AbortedError if the signal fired; call at loop heads in long work. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new AbortedError('interrupted', { cause: signal.reason });
}
