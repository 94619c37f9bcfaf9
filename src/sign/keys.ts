// Signing keys: Ed25519 (default) or ECDSA P-256, as standard PEM files any tool reads — the private
// key PKCS#8 (optionally encrypted with a passphrase), the public key SPKI. A signature is over
// exact bytes (the bundle's airlock/inventory.json), so `openssl pkeyutl -verify -rawin` checks it
// without airlock:
//
//   Ed25519:    openssl pkeyutl -verify -pubin -inkey NAME.pub -rawin -in payload -sigfile sig
//   ECDSA P-256 (DER signature over SHA-256): add `-digest sha256`
//
// A key's fingerprint is the sha256 of its public key's DER (SPKI) bytes:
//   openssl pkey -pubin -in NAME.pub -outform DER | sha256sum
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { AirlockError, ConflictError, NotFoundError, UsageError } from '../core/errors.ts';
import { writeFilesAtomic } from '../util/atomic-file.ts';
import { fileError } from '../util/file-error.ts';

export type KeyAlgorithm = 'ed25519' | 'ecdsa-p256';
export const KEY_ALGORITHMS: readonly KeyAlgorithm[] = ['ed25519', 'ecdsa-p256'];
export const PASSPHRASE_ENV = 'AIRLOCK_KEY_PASSPHRASE';

export interface SigningKey {
  path: string;
  algorithm: KeyAlgorithm;
  privateKey: KeyObject;
  publicKey: KeyObject;
  /** `sha256:<hex>` of the public key's SPKI DER. */
  fingerprint: string;
}

export interface VerifyingKey {
  path: string;
  algorithm: KeyAlgorithm;
  publicKey: KeyObject;
  fingerprint: string;
}

export interface KeygenOptions {
  /** NAME: writes NAME.key and NAME.pub. */
  out: string;
  algorithm?: KeyAlgorithm | undefined;
  /** Encrypts NAME.key (PKCS#8, AES-256-CBC) when given. */
  passphrase?: string | undefined;
  /** Replace existing files instead of refusing. */
  force?: boolean | undefined;
}

export interface KeygenResult {
  privateKey: string;
  publicKey: string;
  algorithm: KeyAlgorithm;
  fingerprint: string;
}

export async function generateKeys(opts: KeygenOptions): Promise<KeygenResult> {
  const algorithm = opts.algorithm ?? 'ed25519';
  if (!KEY_ALGORITHMS.includes(algorithm)) throw new UsageError(`unknown key type "${algorithm}"`, { hint: `types: ${KEY_ALGORITHMS.join(', ')}` });
  if (opts.passphrase !== undefined && opts.passphrase.length === 0) throw new UsageError('the passphrase is empty', { hint: 'leave it out for an unencrypted key' });
  const base = resolve(opts.out.replace(/\.(key|pub)$/, ''));
  const privatePath = `${base}.key`;
  const publicPath = `${base}.pub`;
  const pair = algorithm === 'ed25519' ? generateKeyPairSync('ed25519') : generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const privatePem = pair.privateKey.export(
    opts.passphrase !== undefined ? { type: 'pkcs8', format: 'pem', cipher: 'aes-256-cbc', passphrase: opts.passphrase } : { type: 'pkcs8', format: 'pem' },
  ) as string;
  const publicPem = pair.publicKey.export({ type: 'spki', format: 'pem' }) as string;
  // Both files or neither; without force an existing one is never replaced.
  try {
    await writeFilesAtomic(
      [
        { path: privatePath, data: privatePem, mode: 0o600 },
        { path: publicPath, data: publicPem, mode: 0o644 },
      ],
      { exclusive: opts.force !== true, mkdir: true },
    );
  } catch (e) {
    if (e instanceof AirlockError && e.code === 'FILE_EXISTS') throw new ConflictError(e.message, { code: 'KEY_EXISTS', cause: e, hint: 'choose another name, or ask for the files to be replaced' });
    throw e;
  }
  return { privateKey: privatePath, publicKey: publicPath, algorithm, fingerprint: keyFingerprint(pair.publicKey) };
}

export function keyFingerprint(publicKey: KeyObject): string {
  return `sha256:${createHash('sha256').update(publicKey.export({ type: 'spki', format: 'der' })).digest('hex')}`;
}

/** The passphrase from a file (first line) or $AIRLOCK_KEY_PASSPHRASE; undefined when neither is set. */
export async function readPassphrase(file: string | undefined): Promise<string | undefined> {
  if (file !== undefined) {
    const text = await readKeyFile(resolve(file), 'passphrase file');
    return text.replace(/\r?\n[\s\S]*$/, '');
  }
  const env = process.env[PASSPHRASE_ENV];
  return env === undefined || env === '' ? undefined : env;
}

async function readKeyFile(path: string, what: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') throw new NotFoundError(`${what} ${path} does not exist`, { code: 'KEY_NOT_FOUND', cause: e });
    if (code === 'EISDIR') throw new UsageError(`${what} ${path} is a directory`, { code: 'KEY_INVALID' });
    throw fileError(e, path, `read the ${what}`);
  }
}

function pemLabel(text: string): string | undefined {
  return /-----BEGIN ([A-Z0-9 ]+)-----/.exec(text)?.[1];
}

function algorithmOf(key: KeyObject, path: string): KeyAlgorithm {
  if (key.asymmetricKeyType === 'ed25519') return 'ed25519';
  if (key.asymmetricKeyType === 'ec' && key.asymmetricKeyDetails?.namedCurve === 'prime256v1') return 'ecdsa-p256';
  const what = key.asymmetricKeyType === 'ec' ? `an EC key on the curve ${key.asymmetricKeyDetails?.namedCurve ?? 'unknown'}` : `a ${String(key.asymmetricKeyType).toUpperCase()} key`;
  throw new UsageError(`${path} is ${what}: airlock signs with Ed25519 or ECDSA P-256 only`, { code: 'KEY_UNSUPPORTED', hint: 'make a key with `airlock keygen`' });
}

/** A private key for `pack --sign`. A public key, a certificate or an unsupported type is refused by name. */
export async function loadSigningKey(path: string, passphrase?: string): Promise<SigningKey> {
  const abs = resolve(path);
  const text = await readKeyFile(abs, 'key file');
  const label = pemLabel(text);
  if (label === undefined) throw new UsageError(`${abs} is not a PEM key file`, { code: 'KEY_INVALID', hint: 'pass the NAME.key written by `airlock keygen`' });
  if (label === 'PUBLIC KEY') {
    throw new UsageError(`${abs} is a public key: signing needs the private key`, { code: 'KEY_WRONG_TYPE', hint: `pass the .key file written by \`airlock keygen\` (${abs.replace(/\.pub$/, '.key')}); the .pub is for verifying` });
  }
  if (label === 'CERTIFICATE') throw new UsageError(`${abs} is a certificate, not a private key`, { code: 'KEY_WRONG_TYPE', hint: 'pass the NAME.key written by `airlock keygen`' });
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey(passphrase !== undefined ? { key: text, format: 'pem', passphrase } : { key: text, format: 'pem' });
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    if (label === 'ENCRYPTED PRIVATE KEY' && passphrase === undefined) {
      throw new UsageError(`${abs} is encrypted and no passphrase was given`, { code: 'KEY_PASSPHRASE_MISSING', cause: e, hint: `give the passphrase, or set $${PASSPHRASE_ENV}` });
    }
    if (label === 'ENCRYPTED PRIVATE KEY' || /DECRYPT/i.test(code) || /decrypt/i.test((e as Error).message)) {
      throw new UsageError(`${abs}: the passphrase does not decrypt the key`, { code: 'KEY_PASSPHRASE_WRONG', cause: e });
    }
    throw new UsageError(`${abs} is not a private key airlock can read (${(e as Error).message})`, { code: 'KEY_INVALID', cause: e });
  }
  const algorithm = algorithmOf(privateKey, abs);
  const publicKey = createPublicKey(privateKey);
  return { path: abs, algorithm, privateKey, publicKey, fingerprint: keyFingerprint(publicKey) };
}

/** A public key for `verify --key`. A private key is refused: it should not travel with the bundle. */
export async function loadVerifyingKey(path: string): Promise<VerifyingKey> {
  const abs = resolve(path);
  const text = await readKeyFile(abs, 'key file');
  const label = pemLabel(text);
  if (label === undefined) throw new UsageError(`${abs} is not a PEM key file`, { code: 'KEY_INVALID', hint: 'pass the NAME.pub written by `airlock keygen`' });
  if (/PRIVATE KEY$/.test(label)) {
    throw new UsageError(`${abs} is a private key: verifying needs the public key`, { code: 'KEY_WRONG_TYPE', hint: `pass the .pub file written by \`airlock keygen\` (${abs.replace(/\.key$/, '.pub')}); keep the private key on the signing side` });
  }
  if (label !== 'PUBLIC KEY') throw new UsageError(`${abs} holds a ${label}, not a public key (SPKI PEM)`, { code: 'KEY_WRONG_TYPE', hint: 'pass the NAME.pub written by `airlock keygen`' });
  let publicKey: KeyObject;
  try {
    publicKey = createPublicKey({ key: text, format: 'pem' });
  } catch (e) {
    throw new UsageError(`${abs} is not a public key airlock can read (${(e as Error).message})`, { code: 'KEY_INVALID', cause: e });
  }
  return { path: abs, algorithm: algorithmOf(publicKey, abs), publicKey, fingerprint: keyFingerprint(publicKey) };
}

export function signPayload(key: SigningKey, payload: Uint8Array): Buffer {
  return key.algorithm === 'ed25519' ? sign(null, payload, key.privateKey) : sign('sha256', payload, { key: key.privateKey, dsaEncoding: 'der' });
}

export function verifyPayload(key: VerifyingKey, payload: Uint8Array, signature: Uint8Array): boolean {
  try {
    return key.algorithm === 'ed25519' ? verify(null, payload, key.publicKey, signature) : verify('sha256', payload, { key: key.publicKey, dsaEncoding: 'der' }, signature);
  } catch {
    return false;
  }
}
