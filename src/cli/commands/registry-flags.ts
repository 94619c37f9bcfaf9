// Flags shared by every command that talks to registries and chart repositories, and the library
// session they configure (the defaults are the library's).
import { createSession, type Session } from '../../api/session.ts';
import { DEFAULT_CERTS_DIRS, DEFAULT_CONCURRENCY, MAX_CONCURRENCY } from '../../api/defaults.ts';
import type { Output } from '../output.ts';

export const registryOptions = {
  'ca-file': { type: 'string' },
  'certs-dir': { type: 'string', multiple: true },
  insecure: { type: 'string', multiple: true },
  concurrency: { type: 'string' },
} as const;

export const registryUsage = `Registry options:
  --ca-file FILE          trust this CA bundle (PEM) for every registry
  --certs-dir DIR         certs.d-style directory: DIR/HOST[:PORT]/*.crt (CAs), client.cert + client.key
                          (default: ${DEFAULT_CERTS_DIRS.join(' and ')})
  --insecure HOST[:PORT]  allow plain HTTP / unverified TLS for this registry (repeatable;
                          loopback registries are allowed plain HTTP without it)
  --concurrency N         parallel transfers, 1 to ${MAX_CONCURRENCY} (default ${DEFAULT_CONCURRENCY})
Credentials come from ~/.docker/config.json (auths, credHelpers, credsStore), $DOCKER_CONFIG,
$REGISTRY_AUTH_FILE and containers auth.json, like docker, podman and skopeo.`;

/** A whole number as typed, or NaN (the library says what it expects, the CLI which flag). */
export function intFlag(v: unknown): number | undefined {
  if (v === undefined) return undefined;
  return typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : Number.NaN;
}

/** The session a command's flags describe; its warnings go to the output. */
export function sessionFrom(values: Record<string, unknown>, out: Output): Session {
  return createSession({
    caFile: values['ca-file'] as string | undefined,
    certsDirs: values['certs-dir'] as string[] | undefined,
    insecure: values.insecure as string[] | undefined,
    concurrency: intFlag(values.concurrency),
    cacheDir: values.cache as string | undefined,
    onEvent: (e) => {
      if (e.type === 'warning') out.warning(e);
    },
  });
}
