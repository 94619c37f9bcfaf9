// Per-host TLS settings, the way docker and podman read them: a CA bundle trusted everywhere
// (--ca-file), and certs.d directories where <dir>/<host[:port]>/ holds *.crt CA files and
// <name>.cert + <name>.key client certificate pairs (mutual TLS).
import { readdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { createSecureContext, getCACertificates, type SecureContext } from 'node:tls';
import { UsageError } from '../core/errors.ts';
import { isInsecureRegistry } from './endpoint.ts';

/**
 * The certs.d locations docker and podman read, rootless podman's own first (containers-certs.d(5):
 * ~/.config/containers/certs.d); callers may pass these as `certsDirs`.
 */
export const DEFAULT_CERTS_DIRS: readonly string[] = [join(process.env.HOME || homedir(), '.config', 'containers', 'certs.d'), '/etc/containers/certs.d', '/etc/docker/certs.d'];

export interface TlsSettings {
  caFile?: string | undefined;
  certsDirs?: readonly string[] | undefined;
  insecure?: readonly string[] | undefined;
}

/** Options for undici's connector (a subset of node:tls ConnectionOptions). */
export interface HostTlsOptions {
  ca: string[];
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
}

let baseCAs: string[] | undefined;

/**
 * Node's default store plus the operating system's: setting `ca` replaces the defaults, so
 * they are listed explicitly (and a CA installed in /etc/ssl/certs keeps working).
 */
function defaultCAs(): string[] {
  if (baseCAs === undefined) {
    const seen = new Set<string>();
    for (const kind of ['default', 'system'] as const) {
      try {
        for (const c of getCACertificates(kind)) seen.add(c);
      } catch {
        // a platform without a readable system store still has Node's bundled one
      }
    }
    baseCAs = [...seen];
  }
  return baseCAs;
}

async function readPem(path: string, what: string): Promise<string> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw new UsageError(`cannot read ${what} ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      code: 'TLS_FILE_UNREADABLE',
      cause: e,
      hint: 'check the path and its permissions',
    });
  }
  if (!text.includes('-----BEGIN ')) {
    throw new UsageError(`${what} ${path} is not a PEM file (no -----BEGIN line)`, { code: 'TLS_FILE_INVALID' });
  }
  return text;
}

async function listDir(dir: string): Promise<string[]> {
  try {
    return (await readdir(dir)).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT' || (e as NodeJS.ErrnoException).code === 'ENOTDIR') return [];
    throw new UsageError(`cannot read certificate directory ${dir}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      code: 'TLS_FILE_UNREADABLE',
      cause: e,
    });
  }
}

/**
 * TLS options for connections to `host` (host[:port], as in a URL). Missing certs.d entries are
 * normal; an unreadable --ca-file or a half client pair is a usage error.
 */
export async function tlsOptionsFor(host: string, settings: TlsSettings): Promise<HostTlsOptions> {
  const extra: string[] = [];
  if (settings.caFile !== undefined) extra.push(await readPem(settings.caFile, 'CA file'));
  let cert: string | undefined;
  let key: string | undefined;
  for (const base of settings.certsDirs ?? []) {
    const dir = join(base, host);
    const names = await listDir(dir);
    for (const name of names) {
      if (name.endsWith('.crt')) extra.push(await readPem(join(dir, name), 'CA certificate'));
    }
    if (cert !== undefined) continue;
    for (const name of names) {
      if (!name.endsWith('.cert')) continue;
      const keyName = `${name.slice(0, -'.cert'.length)}.key`;
      if (!names.includes(keyName)) {
        throw new UsageError(`client certificate ${join(dir, name)} has no matching key ${keyName}`, {
          code: 'TLS_CLIENT_KEY_MISSING',
          hint: `put the private key next to it as ${join(dir, keyName)}`,
        });
      }
      cert = await readPem(join(dir, name), 'client certificate');
      key = await readPem(join(dir, keyName), 'client key');
      break;
    }
  }
  const options: HostTlsOptions = {
    ca: extra.length === 0 ? defaultCAs() : [...defaultCAs(), ...extra],
    rejectUnauthorized: !isInsecureRegistry(host, settings.insecure),
  };
  if (cert !== undefined && key !== undefined) {
    options.cert = cert;
    options.key = key;
  }
  return options;
}

/**
 * Connect options for undici: one SecureContext per host, built once. Passing `ca` to every
 * connect would re-parse a few hundred root certificates for each new connection.
 */
export async function connectOptionsFor(host: string, settings: TlsSettings): Promise<{ secureContext: SecureContext; rejectUnauthorized: boolean }> {
  const o = await tlsOptionsFor(host, settings);
  try {
    const secureContext = createSecureContext({ ca: o.ca, ...(o.cert !== undefined ? { cert: o.cert, key: o.key } : {}) });
    return { secureContext, rejectUnauthorized: o.rejectUnauthorized };
  } catch (e) {
    throw new UsageError(`TLS settings for ${host} are unusable: ${(e as Error).message}`, {
      code: 'TLS_FILE_INVALID',
      cause: e,
      hint: settings.caFile !== undefined ? `check the CA file ${settings.caFile} and the certs.d entries for ${host}` : `check the certs.d entries for ${host}`,
    });
  }
}

/** Node/OpenSSL codes for "the certificate is not trusted or not for this host". */
const UNTRUSTED_CODES = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'CERT_REJECTED',
  'INVALID_CA',
]);

export function isUntrustedCertificate(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && UNTRUSTED_CODES.has(code);
}
