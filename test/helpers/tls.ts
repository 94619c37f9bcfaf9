// Test PKI and password files made with the real tools: the openssl CLI for a CA and leaf
// certificates, `htpasswd -B` for the bcrypt file distribution insists on (apr1/SHA entries get 401).
// EC P-256 keys keep generation to a few milliseconds.
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const TOOL_TIMEOUT_MS = 15_000;

export interface CertAuthority {
  dir: string;
  certFile: string;
  keyFile: string;
}

export interface LeafCert {
  certFile: string;
  keyFile: string;
}

async function tool(bin: string, args: string[], cwd: string, hint: string): Promise<string> {
  try {
    const { stdout } = await run(bin, args, { cwd, timeout: TOOL_TIMEOUT_MS, maxBuffer: 1 << 20 });
    return stdout;
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { stderr?: string };
    if (err.code === 'ENOENT') throw new Error(`${bin} is not installed (${hint})`, { cause: e });
    throw new Error(`${bin} ${args[0] ?? ''} failed: ${err.stderr ?? err.message}`, { cause: e });
  }
}

const openssl = (args: string[], cwd: string) => tool('openssl', args, cwd, 'apt-get install openssl');

/** A self-signed CA (EC P-256, 10 years) in `dir`: ca.crt + ca.key. */
export async function makeCa(dir: string): Promise<CertAuthority> {
  await mkdir(dir, { recursive: true });
  const certFile = join(dir, 'ca.crt');
  const keyFile = join(dir, 'ca.key');
  await openssl(
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-days', '3650',
      '-subj', '/CN=airlock-test-ca', '-keyout', keyFile, '-out', certFile,
      '-addext', 'basicConstraints=critical,CA:TRUE', '-addext', 'keyUsage=critical,keyCertSign,cRLSign',
    ],
    dir,
  );
  return { dir, certFile, keyFile };
}

export interface LeafOptions {
  ips?: string[];
  dns?: string[];
  /** File name stem inside the CA's dir; defaults to a random one so parallel calls never collide. */
  name?: string;
  /** serverAuth (default) for TLS servers; `signing` for a token issuer's JWT signing certificate. */
  usage?: 'serverAuth' | 'signing';
}

/** A leaf certificate signed by `ca`, with the given subjectAltNames (Go ignores the CN). */
export async function makeServerCert(ca: CertAuthority, opts: LeafOptions = {}): Promise<LeafCert> {
  const ips = opts.ips ?? ['127.0.0.1'];
  const dns = opts.dns ?? ['localhost'];
  const stem = opts.name ?? `leaf-${randomBytes(4).toString('hex')}`;
  const certFile = join(ca.dir, `${stem}.crt`);
  const keyFile = join(ca.dir, `${stem}.key`);
  const csrFile = join(ca.dir, `${stem}.csr`);
  const extFile = join(ca.dir, `${stem}.ext`);
  const sans = [...ips.map((ip) => `IP:${ip}`), ...dns.map((d) => `DNS:${d}`)];
  const ext = ['basicConstraints=CA:FALSE'];
  if (sans.length > 0) ext.push(`subjectAltName=${sans.join(',')}`);
  if (opts.usage === 'signing') ext.push('keyUsage=critical,digitalSignature');
  else ext.push('keyUsage=critical,digitalSignature,keyEncipherment', 'extendedKeyUsage=serverAuth');
  await writeFile(extFile, ext.join('\n') + '\n');
  const cn = dns[0] ?? ips[0] ?? stem;
  await openssl(
    ['req', '-new', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-subj', `/CN=${cn}`, '-keyout', keyFile, '-out', csrFile],
    ca.dir,
  );
  await openssl(
    ['x509', '-req', '-in', csrFile, '-CA', ca.certFile, '-CAkey', ca.keyFile,
      '-set_serial', `0x${randomBytes(8).toString('hex')}`, '-days', '825', '-extfile', extFile, '-out', certFile],
    ca.dir,
  );
  return { certFile, keyFile };
}

/** An htpasswd file with bcrypt entries (the only kind distribution accepts). Returns its path. */
export async function htpasswdFile(dir: string, users: Record<string, string>, name = 'htpasswd'): Promise<string> {
  await mkdir(dir, { recursive: true });
  const lines = await Promise.all(
    Object.entries(users).map(([user, password]) =>
      // -C 4: the lowest bcrypt cost, so every authenticated request stays fast in tests.
      tool('htpasswd', ['-Bbn', '-C', '4', user, password], dir, 'apt-get install apache2-utils'),
    ),
  );
  const path = join(dir, name);
  await writeFile(path, lines.map((l) => l.trim()).filter((l) => l.length > 0).join('\n') + '\n', { mode: 0o600 });
  return path;
}
