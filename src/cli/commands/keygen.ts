import { ExitCode, UsageError } from '../../core/errors.ts';
import { keygen } from '../../api/keygen.ts';
import { KEY_ALGORITHMS, PASSPHRASE_ENV, readPassphrase, type KeyAlgorithm } from '../../sign/keys.ts';
import { defineCommand } from './types.ts';

export const keygenCommand = defineCommand({
  name: 'keygen',
  summary: 'make a key pair for signing bundles (NAME.key private, NAME.pub public)',
  usage: `Usage: airlock keygen -o NAME [--type ed25519|ecdsa-p256] [--passphrase-file FILE] [--force]

Writes NAME.key (the private key, PKCS#8 PEM, mode 0600; encrypted when a passphrase is given) and
NAME.pub (the public key, SPKI PEM). Sign with \`airlock pack --sign NAME.key\` on the connected
side; check with \`airlock verify --key NAME.pub\` (or push/serve --key) on the isolated side.

The signature is over the exact bytes of airlock/inventory.json in the bundle (it pins every blob,
index.json and the lock) and is stored raw in airlock/inventory.json.sig, so openssl checks it too:
  tar -xf BUNDLE.tar airlock/inventory.json airlock/inventory.json.sig
  openssl pkeyutl -verify -pubin -inkey NAME.pub -rawin -in airlock/inventory.json -sigfile airlock/inventory.json.sig
(ECDSA P-256: add -digest sha256.) A key's fingerprint is the sha256 of its public key's DER:
  openssl pkey -pubin -in NAME.pub -outform DER | sha256sum

Options:
  -o, --output NAME       where to write NAME.key and NAME.pub (required)
  --type T                ed25519 (default) or ecdsa-p256
  --passphrase-file FILE  encrypt NAME.key with the passphrase in FILE (first line); else $${PASSPHRASE_ENV} if set
  --force                 replace existing files`,
  options: {
    output: { type: 'string', short: 'o' },
    type: { type: 'string' },
    'passphrase-file': { type: 'string' },
    force: { type: 'boolean', default: false },
  },
  async run({ values, out, signal }) {
    if (typeof values.output !== 'string') throw new UsageError('keygen needs a name: airlock keygen -o NAME');
    const type = (values.type as string | undefined) ?? 'ed25519';
    if (!KEY_ALGORITHMS.includes(type as KeyAlgorithm)) throw new UsageError(`unknown key type "${type}"`, { hint: `types: ${KEY_ALGORITHMS.join(', ')}` });
    const file = values['passphrase-file'] as string | undefined;
    const r = await keygen(values.output, { type: type as KeyAlgorithm, passphrase: file !== undefined ? await readPassphrase(file) : undefined, force: values.force === true, signal });
    out.result(
      { privateKey: r.privateKey, publicKey: r.publicKey, algorithm: r.algorithm, fingerprint: r.fingerprint, encrypted: r.encrypted },
      [
        `wrote ${r.privateKey} (private${r.encrypted ? ', encrypted' : ''}: keep it on the signing side)`,
        `wrote ${r.publicKey} (public: give it to whoever verifies)`,
        `${r.algorithm} key ${r.fingerprint}`,
      ].join('\n'),
    );
    return ExitCode.ok;
  },
});
