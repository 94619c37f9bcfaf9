// Opt-in confirmation that discovered images exist: one manifest HEAD per reference through the
// registry client. Only `discover --verify-remote` calls this; discovery itself never connects.
import { AbortedError, AuthError, NotFoundError, RegistryError } from '../core/errors.ts';
import { parseReference } from '../core/reference.ts';
import type { TagResolver } from '../content/types.ts';
import { mapLimit } from '../util/limiter.ts';

export type RemoteStatus = 'found' | 'missing' | 'error';

export interface RemoteCheck {
  reference: string;
  status: RemoteStatus;
  /** The manifest digest the registry answered with. */
  digest?: string;
  /** Why it is missing or could not be checked. */
  message?: string;
}

export interface VerifyRemoteOptions {
  /** A resolver for one repository (RegistryClient.repository). */
  open: (name: { registry: string; repository: string }) => TagResolver;
  concurrency?: number;
  signal?: AbortSignal;
}

function classify(e: unknown): { status: RemoteStatus; message: string } {
  const message = (e as Error).message ?? String(e);
  if (e instanceof NotFoundError || (e instanceof RegistryError && e.status === 404)) return { status: 'missing', message };
  if (e instanceof AuthError || (e instanceof RegistryError && (e.status === 401 || e.status === 403))) {
    // Registries answer 401 both for "no such repository" and "log in first": it cannot be confirmed.
    return { status: 'error', message: `${message} (not confirmed: the registry asks for credentials)` };
  }
  return { status: 'error', message };
}

export async function verifyRemote(references: readonly string[], o: VerifyRemoteOptions): Promise<RemoteCheck[]> {
  return mapLimit(
    references,
    o.concurrency ?? 4,
    async (reference) => {
      const ref = parseReference(reference);
      try {
        const desc = await o.open(ref).resolve(ref.digest ?? ref.tag ?? 'latest', { signal: o.signal });
        return { reference, status: 'found' as const, digest: desc.digest };
      } catch (e) {
        if (e instanceof AbortedError || o.signal?.aborted) throw e;
        return { reference, ...classify(e) };
      }
    },
    o.signal,
  );
}
