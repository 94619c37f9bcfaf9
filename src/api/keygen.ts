// keygen: a key pair for signing bundles.
import { throwIfAborted } from '../core/errors.ts';
import { generateKeys, readPassphrase, type KeyAlgorithm, type KeygenResult } from '../sign/keys.ts';
import type { BaseOptions } from './options.ts';

export type { KeyAlgorithm, KeygenResult };

export interface KeygenOptions extends BaseOptions {
  /** ed25519 (default) or ecdsa-p256. */
  type?: KeyAlgorithm | undefined;
  /** Encrypt NAME.key with this passphrase. Default: $AIRLOCK_KEY_PASSPHRASE when set; else unencrypted. */
  passphrase?: string | undefined;
  /** Replace existing files instead of refusing. */
  force?: boolean | undefined;
}

export interface KeygenReport extends KeygenResult {
  /** NAME.key is encrypted with a passphrase. */
  encrypted: boolean;
}

/** Write NAME.key (private, PKCS#8 PEM, mode 0600) and NAME.pub (public, SPKI PEM). */
export async function keygen(name: string, options: KeygenOptions = {}): Promise<KeygenReport> {
  throwIfAborted(options.signal);
  const passphrase = options.passphrase ?? (await readPassphrase(undefined));
  const r = await generateKeys({ out: name, algorithm: options.type ?? 'ed25519', passphrase, force: options.force === true });
  return { ...r, encrypted: passphrase !== undefined };
}
