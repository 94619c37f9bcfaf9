// Turning registry answers and connection failures into the typed errors of src/core/errors.ts,
// with messages that name the image or blob, what was expected, and what to do.
import {
  type AirlockError,
  ConflictError,
  NetworkError,
  RegistryError,
  type OciErrorEntry,
} from '../core/errors.ts';
import { STATUS_CODES } from 'node:http';
import { redactText, redactUrl } from '../core/redact.ts';
import { errorCode } from './retry.ts';
import { isUntrustedCertificate } from './tls.ts';
import { isPlainHttpAnswer } from './endpoint.ts';
import { TransferStallError } from './transfer-watch.ts';

const ERROR_BODY_LIMIT = 64 * 1024;

/** What the failed request was about, for the message. */
export interface ErrorSubject {
  registry: string;
  repository: string;
  /** manifest: reference is a tag or digest; blob: a digest; tags/upload: none needed. */
  kind: 'manifest' | 'blob' | 'tags' | 'upload' | 'mount';
  reference?: string | undefined;
  /** A verb phrase: "fetch", "push", "check", "mount", "list tags of". */
  action: string;
}

export function describeSubject(s: ErrorSubject): string {
  const name = `${s.registry}/${s.repository}`;
  switch (s.kind) {
    case 'manifest':
      return s.reference === undefined ? `image ${name}` : `image ${name}${s.reference.includes(':') ? '@' : ':'}${s.reference}`;
    case 'blob':
    case 'upload':
    case 'mount':
      return s.reference === undefined ? `blob in ${name}` : `blob ${s.reference} of ${name}`;
    case 'tags':
      return `repository ${name}`;
  }
}

/** Read at most 64 KiB of an error body and pull out the OCI `errors` list, if any. */
export async function readErrorBody(body: AsyncIterable<Buffer | Uint8Array> & { destroy?: () => void }): Promise<{ errors: OciErrorEntry[]; text: string }> {
  const chunks: Buffer[] = [];
  let total = 0;
  try {
    for await (const c of body) {
      const b = Buffer.isBuffer(c) ? c : Buffer.from(c);
      if (total + b.length > ERROR_BODY_LIMIT) {
        chunks.push(b.subarray(0, ERROR_BODY_LIMIT - total));
        total = ERROR_BODY_LIMIT;
        body.destroy?.();
        break;
      }
      chunks.push(b);
      total += b.length;
    }
  } catch {
    // a broken error body still leaves the status to report
  }
  const text = Buffer.concat(chunks, total).toString('utf8');
  return { errors: parseOciErrors(text), text };
}

export function parseOciErrors(text: string): OciErrorEntry[] {
  try {
    const doc = JSON.parse(text) as unknown;
    const list = (doc as { errors?: unknown } | null)?.errors;
    if (!Array.isArray(list)) return [];
    return list
      .filter((e): e is Record<string, unknown> => typeof e === 'object' && e !== null && typeof (e as { code?: unknown }).code === 'string')
      .map((e) => {
        const entry: OciErrorEntry = { code: e.code as string };
        if (typeof e.message === 'string') entry.message = redactText(e.message);
        if (e.detail !== undefined) entry.detail = typeof e.detail === 'string' ? redactText(e.detail) : e.detail;
        return entry;
      });
  } catch {
    return [];
  }
}

function summary(status: number, errors: OciErrorEntry[], fallbackCode?: string): string {
  const first = errors[0];
  if (first === undefined) return fallbackCode ?? STATUS_CODES[status] ?? 'unexpected status';
  return first.message ? `${first.code}: ${first.message}` : first.code;
}

function looksImmutable(errors: OciErrorEntry[], text: string): boolean {
  if (/immutab/i.test(text)) return true;
  return errors.some((e) => /immutab/i.test(`${e.message ?? ''} ${JSON.stringify(e.detail ?? '')}`));
}

export function loginHint(registry: string): string {
  return `log in with \`docker login ${registry}\` or put credentials in ~/.docker/config.json / REGISTRY_AUTH_FILE`;
}

/**
 * The error for a non-success answer. `errors` may be synthesised by the caller for bodiless
 * answers (HEAD), so a 404 on a manifest reads the same whichever method found it.
 */
export function errorForResponse(
  subject: ErrorSubject,
  res: { status: number; url: URL; attempts?: number },
  body: { errors: OciErrorEntry[]; text: string },
): AirlockError {
  const { status } = res;
  const url = redactUrl(res.url);
  const what = describeSubject(subject);
  const errors = body.errors;
  const details = { status, errors, url };

  if (status === 404) {
    const code = errors[0]?.code ?? (subject.kind === 'manifest' ? 'MANIFEST_UNKNOWN' : subject.kind === 'tags' ? 'NAME_UNKNOWN' : 'BLOB_UNKNOWN');
    const detailed = { status, errors: errors.length > 0 ? errors : [{ code }], url };
    if (subject.kind === 'blob' || subject.kind === 'mount') {
      return new RegistryError(`blob ${subject.reference ?? ''} not found in ${subject.registry}/${subject.repository} (${code})`, detailed);
    }
    if (subject.kind === 'upload') {
      return new RegistryError(`upload of ${what} failed: the registry lost the upload session (${code})`, detailed, {
        hint: 'retry the push; the registry may have been restarted or purged the session',
      });
    }
    return new RegistryError(`${what} not found (${code})`, detailed);
  }

  if (subject.kind === 'manifest' && subject.reference !== undefined && !subject.reference.includes(':') && subject.action === 'push') {
    if (status === 412 || ((status === 409 || status === 400 || status === 403) && looksImmutable(errors, body.text))) {
      return new ConflictError(
        `${what} is immutable on ${subject.registry}: the registry refused to move the tag (${status} ${summary(status, errors)})`,
        {
          code: 'TAG_IMMUTABLE',
          cause: new RegistryError(`push ${what}: ${status}`, details),
          hint: 'push under a new tag, or ask the registry admin to exempt this repository from the immutable-tag rule',
        },
      );
    }
  }

  if (status === 401 || status === 403) {
    const why = status === 401 ? 'authentication required' : 'access denied';
    return new RegistryError(`cannot ${subject.action} ${what}: ${why} (${status} ${summary(status, errors, status === 401 ? 'UNAUTHORIZED' : 'DENIED')})`, details, {
      hint:
        status === 401
          ? loginHint(subject.registry)
          : `the account used lacks ${subject.action === 'push' || subject.action === 'mount' ? 'push' : 'pull'} permission on ${subject.registry}/${subject.repository}; ${loginHint(subject.registry)}`,
    });
  }

  if (status === 429 || status >= 500) {
    const tries = res.attempts !== undefined && res.attempts > 1 ? ` after ${res.attempts} attempts` : '';
    return new RegistryError(`cannot ${subject.action} ${what}: ${subject.registry} answered ${status} ${summary(status, errors)}${tries}`, details, {
      hint: status === 429 ? 'the registry is rate-limiting; wait and retry, or lower the concurrency' : 'the registry is failing or overloaded; retry later',
    });
  }

  return new RegistryError(`cannot ${subject.action} ${what}: ${subject.registry} answered ${status} ${summary(status, errors)}`, details, {
    hint: status === 405 ? `${subject.registry} does not allow this here: it may be read-only (maintenance mode) or a pull-through cache` : undefined,
  });
}

/**
 * A failure below HTTP (connect, TLS, reset, a stalled or crawling transfer) as a NetworkError
 * naming the host and what to check; `attempts` (when more than one) says how often it was tried.
 */
export function networkErrorFor(err: unknown, host: string, what: string, attempts = 1): NetworkError {
  const tries = attempts > 1 ? ` (${attempts} attempts)` : '';
  if (err instanceof TransferStallError) {
    return new NetworkError(`cannot ${what}: ${err.message}${tries}`, {
      code: err.code,
      cause: err,
      hint:
        err.code === 'TRANSFER_TOO_SLOW'
          ? `check the network path to ${host}; a slow link that works can be allowed with a lower --min-rate (0 turns the check off)`
          : `check ${host} and the network path to it; a registry that is merely slow can be given a longer --timeout`,
    });
  }
  const code = errorCode(err);
  // Node suggests --use-system-ca for untrusted chains; airlock already trusts the system store.
  const reason = redactText(err instanceof Error ? err.message : String(err)).replace(/;\s*if the root CA is installed locally.*$/s, '');
  if (isUntrustedCertificate(err)) {
    return new NetworkError(`TLS certificate of ${host} is not trusted (${code}: ${reason})`, {
      code: 'TLS_UNTRUSTED',
      cause: err,
      hint: `trust the CA that signed it (a CA file, or <dir>/${host}/ca.crt in a certs.d dir); marking ${host} insecure skips verification (lab use only)`,
    });
  }
  if (isPlainHttpAnswer(err)) {
    return new NetworkError(`${host} answered an HTTPS request in plain HTTP (while trying to ${what})`, {
      code: 'TLS_PLAIN_HTTP',
      cause: err,
      hint: `if this registry really serves plain HTTP, mark ${host} insecure`,
    });
  }
  const hints: Record<string, string> = {
    ECONNREFUSED: `check that the registry at ${host} is running and that host and port are right`,
    ENOTFOUND: `check the host name ${host} and the DNS settings of this machine`,
    EAI_AGAIN: `DNS lookup of ${host} failed temporarily; check the DNS settings`,
    UND_ERR_CONNECT_TIMEOUT: `check the network path to ${host} (firewall, proxy, routing)`,
    ETIMEDOUT: `check the network path to ${host} (firewall, proxy, routing)`,
  };
  const phrases: Record<string, string> = {
    ECONNREFUSED: 'connection refused',
    ENOTFOUND: 'host not found',
    ECONNRESET: 'connection reset',
    UND_ERR_SOCKET: 'connection closed by the other side',
    UND_ERR_CONNECT_TIMEOUT: 'connect timed out',
    UND_ERR_HEADERS_TIMEOUT: 'no answer in time',
    UND_ERR_BODY_TIMEOUT: 'transfer stalled',
  };
  const phrase = code !== undefined && phrases[code] !== undefined ? `${phrases[code]} (${code})` : `${reason}${code ? ` (${code})` : ''}`;
  return new NetworkError(`cannot ${what}: ${host}: ${phrase}${tries}`, {
    code: code === 'ECONNREFUSED' ? 'CONNECTION_REFUSED' : 'NETWORK',
    cause: err,
    hint: (code !== undefined ? hints[code] : undefined) ?? `check that ${host} is reachable from this machine`,
  });
}
