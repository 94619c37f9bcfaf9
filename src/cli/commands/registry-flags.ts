// Flags shared by every command that talks to registries and chart repositories, and the library
// session they configure (the defaults are the library's).
import { createSession, type Session, type SessionOptions } from '../../api/session.ts';
import { DEFAULT_CERTS_DIRS, DEFAULT_CONCURRENCY, DEFAULT_MIN_RATE, DEFAULT_TIMEOUT_MS, MAX_CONCURRENCY } from '../../api/defaults.ts';
import { formatDuration, formatRate } from '../../registry/transfer-limits.ts';
import type { Output } from '../output.ts';

export const registryOptions = {
  'ca-file': { type: 'string' },
  'certs-dir': { type: 'string', multiple: true },
  insecure: { type: 'string', multiple: true },
  'plain-http': { type: 'string', multiple: true },
  concurrency: { type: 'string' },
  timeout: { type: 'string' },
  'min-rate': { type: 'string' },
} as const;

export const registryUsage = `Registry options:
  --ca-file FILE          trust this CA bundle (PEM) for every registry
  --certs-dir DIR         certs.d-style directory: DIR/HOST[:PORT]/*.crt (CAs), client.cert + client.key
                          (default: ${DEFAULT_CERTS_DIRS.join(', ')})
  --insecure[=HOST[:PORT]]
                          skip TLS verification for HOST (and accept a plain-HTTP answer from it), as
                          crane and oras do; without a value, for every registry (repeatable;
                          \`--insecure HOST\` works too)
  --plain-http[=HOST[:PORT]]
                          HOST speaks plain HTTP (HTTPS is tried first, unverified; every registry
                          without a value); loopback registries need neither flag
  --concurrency N         parallel transfers, 1 to ${MAX_CONCURRENCY} (default ${DEFAULT_CONCURRENCY})
  --timeout DURATION      cut and retry a connect, a wait for response headers or a transfer that
                          goes this long without a byte, e.g. 30s, 500ms, 2m (default ${formatDuration(DEFAULT_TIMEOUT_MS).replace(' ', '')});
                          a download resumes where it stopped
  --min-rate RATE         cut and retry a transfer slower than RATE averaged over the timeout,
                          e.g. 10KiB/s, 1MB/s; 0 turns it off (default ${formatRate(DEFAULT_MIN_RATE).replace(/\.0 | /g, '')})
Requests answered 429 or 5xx, and connections that break, stall or crawl, are retried a few times
with backoff (each retry is reported as a warning); downloads resume where they stopped.
Credentials come from ~/.docker/config.json (auths, credHelpers, credsStore), $DOCKER_CONFIG,
$REGISTRY_AUTH_FILE and containers auth.json, like docker, podman and skopeo.`;

/** A whole number as typed, or NaN (the library says what it expects, the CLI which flag). */
export function intFlag(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : Number.NaN;
}

/** The session a command's flags describe; its warnings go to the output. */
export function sessionFrom(values: Record<string, unknown>, out: Output, extra: Pick<SessionOptions, 'credentials'> = {}): Session {
  return createSession({
    ...extra,
    caFile: values['ca-file'] as string | undefined,
    certsDirs: values['certs-dir'] as string[] | undefined,
    // A plain-HTTP host is reached through the same https-then-http probe as an insecure one.
    insecure: [...((values.insecure as string[] | undefined) ?? []), ...((values['plain-http'] as string[] | undefined) ?? [])],
    concurrency: intFlag(values.concurrency),
    timeout: values.timeout as string | undefined,
    minRate: values['min-rate'] as string | undefined,
    chunkSize: values['chunk-size'] as string | undefined,
    cacheDir: values.cache as string | undefined,
    onEvent: (e) => {
      if (e.type === 'warning') out.warning(e);
    },
  });
}

