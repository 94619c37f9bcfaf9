// Bundle signatures: the signed payload is the exact bytes of airlock/inventory.json (which pins
// every blob, index.json and the lock); the raw signature is airlock/inventory.json.sig and
// airlock/signature.json says which algorithm and key. Only a key the user gives is trusted:
// signature.json is a claim anyone can copy from another bundle, so the signer airlock reports is
// the key that verified the signature, never the key the bundle names.
//
//   tar -xf b.tar airlock/inventory.json airlock/inventory.json.sig
//   openssl pkeyutl -verify -pubin -inkey NAME.pub -rawin -in airlock/inventory.json -sigfile airlock/inventory.json.sig
import { IntegrityError } from '../core/errors.ts';
import { KEY_ALGORITHMS, verifyPayload, type KeyAlgorithm, type VerifyingKey } from '../sign/keys.ts';
import { canonicalJson, INVENTORY_PATH, SIGNATURE_INFO_PATH, SIGNATURE_PATH, type SignatureInfo } from './format.ts';
import { signatureInfoFor } from './entries.ts';
import type { Bundle, BundleSignature } from './read.ts';

/** What a bundle's signature establishes. */
export interface SignatureStatus {
  /** A key the user gave verified the signature. */
  verified: boolean;
  /** The fingerprint of that key: the signer, as a fact. Only when verified. */
  key?: string;
  /** Its algorithm. Only when verified. */
  algorithm?: string;
  /**
   * What airlock/signature.json says signed the bundle: a claim, unchecked. Present when the
   * signature was not verified, or when the claim disagrees with the key that verified it.
   */
  claimed?: { algorithm: string; key: string };
}

const FINGERPRINT = /^sha256:[0-9a-f]{64}$/;

/** airlock/signature.json's exact bytes for a signature made with `key` (or claimed to be). */
export function signatureInfoBytes(key: { algorithm: string; fingerprint: string }): Buffer {
  return Buffer.from(canonicalJson(signatureInfoFor(key), true));
}

/**
 * What can be checked of a signature without its key: signature.json names the payload and
 * signature airlock writes, an algorithm airlock signs with and a key fingerprint in airlock's
 * form, and the raw signature has that algorithm's shape. Problems by entry; none when it holds.
 */
export function signatureClaimProblems(sig: BundleSignature): { entry: string; message: string }[] {
  const { info } = sig;
  const out: { entry: string; message: string }[] = [];
  if (info.payload !== INVENTORY_PATH || info.signature !== SIGNATURE_PATH) {
    out.push({ entry: SIGNATURE_INFO_PATH, message: `names the payload ${info.payload} and signature ${info.signature}; airlock signs ${INVENTORY_PATH} into ${SIGNATURE_PATH}` });
  }
  if (!isKeyAlgorithm(info.algorithm)) {
    out.push({ entry: SIGNATURE_INFO_PATH, message: `names the algorithm "${info.algorithm}"; airlock signs with ${KEY_ALGORITHMS.join(' or ')}` });
  } else {
    const bad = signatureShapeProblem(info.algorithm, sig.bytes);
    if (bad) out.push({ entry: SIGNATURE_PATH, message: `not an ${info.algorithm} signature as airlock writes it (${SIGNATURE_INFO_PATH} names ${info.algorithm}): ${bad}` });
  }
  if (!FINGERPRINT.test(info.key)) out.push({ entry: SIGNATURE_INFO_PATH, message: `names the key "${info.key}": airlock writes a key's fingerprint as sha256:<64 hex digits>` });
  return out;
}

/**
 * Throw IntegrityError unless `bundle` is signed by `key`, and its signature.json says exactly
 * that. Checks the inventory only: callers that move content rely on it pinning every digest (and
 * on every blob being verified as it streams). Returns the signer: the key given.
 */
export function verifySignature(bundle: Bundle, key: VerifyingKey): SignatureStatus {
  const sig = bundle.signature;
  if (!sig) {
    throw new IntegrityError(`${bundle.path} is not signed, and the key ${key.path} demands a signature`, { code: 'SIGNATURE_MISSING', hint: 'pack it signed with that key, or do not demand a signature' });
  }
  const hint = { code: 'SIGNATURE_INVALID' as const, hint: `do not import this bundle; run \`airlock verify ${bundle.path}\` with the key for details` };
  if (!verifyPayload(key, bundle.inventoryBytes, sig.bytes)) throw new IntegrityError(`${bundle.path}: ${notVerifiedMessage(sig.info, key)}`, hint);
  if (!sig.infoBytes.equals(signatureInfoBytes(key))) throw new IntegrityError(`${bundle.path}: ${SIGNATURE_INFO_PATH} ${claimMismatchMessage(sig.info, key)}`, hint);
  return { verified: true, key: key.fingerprint, algorithm: key.algorithm };
}

/**
 * The signature's status for a record (push, serve): verified by `key` when one is given (else
 * verifySignature throws), otherwise only a claim. Undefined for an unsigned bundle without a key.
 */
export function signatureStatus(bundle: Bundle, key: VerifyingKey | undefined): SignatureStatus | undefined {
  if (key) return verifySignature(bundle, key);
  const sig = bundle.signature;
  return sig ? { verified: false, claimed: { algorithm: sig.info.algorithm, key: sig.info.key } } : undefined;
}

/** Why the signature does not verify with `key`, without taking the bundle's claim for a fact. */
export function notVerifiedMessage(info: SignatureInfo, key: VerifyingKey): string {
  return info.key !== key.fingerprint
    ? `not signed by the key given: the signature does not verify with ${key.path} (${key.fingerprint}); ${SIGNATURE_INFO_PATH} claims the key ${info.key}`
    : `the signature does not match ${INVENTORY_PATH}: the inventory or the signature was changed after signing`;
}

/** Why signature.json is not what airlock writes for a signature that `key` verified. */
export function claimMismatchMessage(info: SignatureInfo, key: VerifyingKey): string {
  if (info.key !== key.fingerprint) return `names the key ${info.key} as the signer, but the signature was made with the key given (${key.fingerprint}): it was altered or taken from another bundle`;
  if (info.algorithm !== key.algorithm) return `names the algorithm ${info.algorithm}, but the key that verified the signature is ${key.algorithm}`;
  return 'is not as airlock writes it for this signature (other fields, or not in canonical form)';
}

function isKeyAlgorithm(a: string): a is KeyAlgorithm {
  return (KEY_ALGORITHMS as readonly string[]).includes(a);
}

/** Ed25519 signatures are 64 bytes; ECDSA P-256 ones a strict DER SEQUENCE of two positive INTEGERs of at most 33 bytes. */
function signatureShapeProblem(algorithm: KeyAlgorithm, b: Buffer): string | undefined {
  if (algorithm === 'ed25519') return b.length === 64 ? undefined : `${b.length} bytes, an Ed25519 signature is 64`;
  if (b.length < 8 || b[0] !== 0x30 || b[1] !== b.length - 2) return 'not a DER SEQUENCE';
  let i = 2;
  for (const part of ['r', 's']) {
    if (b[i] !== 0x02) return `no INTEGER ${part}`;
    const len = b[i + 1]!;
    const v = b.subarray(i + 2, i + 2 + len);
    if (len < 1 || len > 33 || v.length !== len) return `INTEGER ${part} has a bad length`;
    if (v[0]! & 0x80) return `INTEGER ${part} is negative`;
    if (len > 1 && v[0] === 0 && !(v[1]! & 0x80)) return `INTEGER ${part} is not minimally encoded`;
    i += 2 + len;
  }
  return i === b.length ? undefined : 'bytes after the two INTEGERs';
}
