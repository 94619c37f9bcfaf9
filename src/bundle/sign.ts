// Bundle signatures: the signed payload is the exact bytes of airlock/inventory.json (which pins
// every blob, index.json and the lock); the raw signature is airlock/inventory.json.sig and
// airlock/signature.json says which algorithm and key. Only a key the user gives is trusted.
//
//   tar -xf b.tar airlock/inventory.json airlock/inventory.json.sig
//   openssl pkeyutl -verify -pubin -inkey NAME.pub -rawin -in airlock/inventory.json -sigfile airlock/inventory.json.sig
import { IntegrityError } from '../core/errors.ts';
import { verifyPayload, type VerifyingKey } from '../sign/keys.ts';
import { INVENTORY_PATH, SIGNATURE_PATH } from './format.ts';
import type { Bundle } from './read.ts';

/**
 * Throw IntegrityError unless `bundle` is signed by `key`. Checks the inventory only: callers that
 * move content rely on it pinning every digest (and on every blob being verified as it streams).
 */
export function verifySignature(bundle: Bundle, key: VerifyingKey): void {
  const sig = bundle.signature;
  if (!sig) {
    throw new IntegrityError(`${bundle.path} is not signed, and the key ${key.path} demands a signature`, { code: 'SIGNATURE_MISSING', hint: 'pack it signed with that key, or do not demand a signature' });
  }
  if (sig.info.payload !== INVENTORY_PATH || sig.info.signature !== SIGNATURE_PATH || !verifyPayload(key, bundle.inventoryBytes, sig.bytes)) {
    throw new IntegrityError(
      sig.info.key !== key.fingerprint
        ? `${bundle.path} is signed by another key: ${sig.info.key}; the key given (${key.path}) is ${key.fingerprint}`
        : `${bundle.path}: the signature does not match ${INVENTORY_PATH}: the inventory or the signature was changed after signing`,
      { code: 'SIGNATURE_INVALID', hint: 'do not import this bundle; verify it with the key for details' },
    );
  }
}
