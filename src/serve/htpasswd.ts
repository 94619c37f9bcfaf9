// Basic auth from an htpasswd file with bcrypt entries (`htpasswd -B`), the only kind distribution
// accepts too. bcrypt is deliberately slow (tens of ms per check at the usual cost), and a client
// pulling an image sends the same Authorization header on every request, so a successful check is
// remembered by the header's hash; checks of one header in flight are shared.
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import bcrypt from 'bcryptjs';
import { NotFoundError, UsageError } from '../core/errors.ts';

const BCRYPT = /^\$2[aby]\$\d{2}\$[./A-Za-z0-9]{53}$/;
/** Remembered successful logins; the whole cache is dropped when full (rare: one entry per user and password). */
const CACHE_MAX = 1024;

export interface BasicAuth {
  /** The user name when the header carries a valid user and password, else undefined. */
  check(authorization: string | undefined): Promise<string | undefined>;
  readonly users: number;
}

export function parseHtpasswd(text: string, what: string): Map<string, string> {
  const users = new Map<string, string>();
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) return;
    const colon = line.indexOf(':');
    const user = colon < 0 ? '' : line.slice(0, colon);
    const hash = colon < 0 ? '' : line.slice(colon + 1);
    if (user === '' || hash === '') throw new UsageError(`${what} line ${i + 1}: expected user:hash`, { code: 'HTPASSWD_INVALID' });
    if (!BCRYPT.test(hash)) {
      throw new UsageError(`${what} line ${i + 1}: the entry for "${user}" is not a bcrypt hash`, {
        code: 'HTPASSWD_INVALID',
        hint: 'only bcrypt entries are accepted (as by distribution): create them with `htpasswd -B FILE USER`',
      });
    }
    users.set(user, hash);
  });
  if (users.size === 0) throw new UsageError(`${what} has no users`, { code: 'HTPASSWD_INVALID', hint: 'add one with `htpasswd -B FILE USER`' });
  return users;
}

export async function loadHtpasswd(path: string): Promise<BasicAuth> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`htpasswd file ${path} does not exist`, { code: 'HTPASSWD_NOT_FOUND', cause: e });
    throw new UsageError(`cannot read htpasswd file ${path}: ${(e as Error).message}`, { code: 'HTPASSWD_UNREADABLE', cause: e });
  }
  return basicAuth(parseHtpasswd(text, path));
}

export function basicAuth(users: ReadonlyMap<string, string>): BasicAuth {
  const ok = new Map<string, string>();
  const pending = new Map<string, Promise<string | undefined>>();
  return {
    users: users.size,
    async check(authorization) {
      if (authorization === undefined) return undefined;
      const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(authorization);
      if (!m) return undefined;
      // The key is a hash: the cache never holds a password in the clear.
      const key = createHash('sha256').update(m[1]!).digest('base64');
      const known = ok.get(key);
      if (known !== undefined) return known;
      let p = pending.get(key);
      if (!p) {
        p = verify(users, m[1]!).finally(() => pending.delete(key));
        pending.set(key, p);
      }
      const user = await p;
      if (user !== undefined) {
        if (ok.size >= CACHE_MAX) ok.clear();
        ok.set(key, user);
      }
      return user;
    },
  };
}

async function verify(users: ReadonlyMap<string, string>, b64: string): Promise<string | undefined> {
  const decoded = Buffer.from(b64, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return undefined;
  const user = decoded.slice(0, colon);
  const hash = users.get(user);
  if (hash === undefined) {
    // Same work for an unknown user as for a wrong password: no user enumeration by timing.
    await bcrypt.compare(decoded.slice(colon + 1), users.values().next().value!);
    return undefined;
  }
  return (await bcrypt.compare(decoded.slice(colon + 1), hash)) ? user : undefined;
}
