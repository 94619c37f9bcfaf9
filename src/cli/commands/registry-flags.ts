// Flags shared by every command that talks to registries, and the client they configure.
import { homedir } from 'node:os';
import { join } from 'node:path';
import { UsageError } from '../../core/errors.ts';
import { RegistryClient } from '../../registry/client.ts';

export const registryOptions = {
  'ca-file': { type: 'string' },
  'certs-dir': { type: 'string', multiple: true },
  insecure: { type: 'string', multiple: true },
  concurrency: { type: 'string' },
} as const;

export const registryUsage = `Registry options:
  --ca-file FILE          trust this CA bundle (PEM) for every registry
  --certs-dir DIR         certs.d-style directory: DIR/HOST[:PORT]/*.crt (CAs), client.cert + client.key
                          (default: /etc/containers/certs.d and /etc/docker/certs.d)
  --insecure HOST[:PORT]  allow plain HTTP / unverified TLS for this registry (repeatable;
                          loopback registries are allowed plain HTTP without it)
  --concurrency N         parallel transfers (default 8)
Credentials come from ~/.docker/config.json (auths, credHelpers, credsStore), $DOCKER_CONFIG,
$REGISTRY_AUTH_FILE and containers auth.json, like docker, podman and skopeo.`;

export function concurrencyOf(values: Record<string, unknown>): number {
  const raw = values.concurrency;
  if (raw === undefined) return 8;
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 64) throw new UsageError(`--concurrency must be an integer from 1 to 64, got "${String(raw)}"`);
  return n;
}

export function makeClient(values: Record<string, unknown>): RegistryClient {
  const certsDirs = (values['certs-dir'] as string[] | undefined) ?? ['/etc/containers/certs.d', '/etc/docker/certs.d'];
  return new RegistryClient({
    caFile: values['ca-file'] as string | undefined,
    certsDirs,
    insecure: (values.insecure as string[] | undefined) ?? [],
    concurrency: concurrencyOf(values),
  });
}

export function defaultCacheDir(): string {
  if (process.env.AIRLOCK_CACHE) return process.env.AIRLOCK_CACHE;
  const base = process.env.XDG_CACHE_HOME || join(homedir(), '.cache');
  return join(base, 'airlock');
}
