// Approvals: a reviewer's signed statement that a bundle — named by its inventory digest, which pins
// every blob, index.json and the lock — is approved (who: the key's fingerprint; when; a note).
// Written beside the bundle, never into it (its bytes, and so its own signature, stay as they are):
//
//   BUNDLE.approvals/<key hex>.json      the statement: the exact signed bytes (canonical JSON)
//   BUNDLE.approvals/<key hex>.json.sig  the raw signature over them, as for the bundle signature
//
// so openssl alone checks one (ECDSA P-256: add -digest sha256), and that it is about this bundle:
//
//   openssl pkeyutl -verify -pubin -inkey REVIEWER.pub -rawin -in b.tar.approvals/HEX.json -sigfile b.tar.approvals/HEX.json.sig
//   tar -xOf b.tar airlock/inventory.json | sha256sum     # = "inventory" in the statement
//
// Only a key the user names is trusted: a statement names its key, but that is a claim until that
// key verifies its signature.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { IntegrityError, UsageError } from '../core/errors.ts';
import { canonicalJson } from '../bundle/format.ts';
import { signPayload, verifyPayload, type SigningKey, type VerifyingKey } from '../sign/keys.ts';
import { writeFilesAtomic } from '../util/atomic-file.ts';
import { fileError } from '../util/file-error.ts';

export const APPROVAL_TYPE = 'dev.airlock.approval.v1';
/** Longest note kept: a sentence or a ticket reference, not a document. */
export const MAX_NOTE_LENGTH = 4096;

/** What a reviewer signs. */
export interface ApprovalStatement {
  type: typeof APPROVAL_TYPE;
  bundle: { name: string; version: string; inventory: string };
  /** Fingerprint of the reviewer's key (`sha256:<hex>` of its SPKI DER). */
  key: string;
  algorithm: string;
  /** ISO 8601, UTC. */
  time: string;
  note?: string;
}

/** An approval checked against a key the user gave. */
export interface VerifiedApproval {
  /** The key's fingerprint: the approver, as a fact. */
  key: string;
  /** The public key file given. */
  keyPath: string;
  time: string;
  note?: string;
  /** The statement file. */
  file: string;
}

/** The folder of a bundle's approvals: beside it, `BUNDLE.approvals/` (a split bundle: its shared name's). */
export function approvalsDir(bundleName: string): string {
  return `${bundleName}.approvals`;
}

/** An approval's file name: the key's fingerprint without its algorithm prefix. */
export function approvalFile(bundleName: string, fingerprint: string): string {
  return join(approvalsDir(bundleName), `${fingerprint.replace(/^sha256:/, '')}.json`);
}

export function checkNote(note: string | undefined): void {
  if (note === undefined) return;
  if (note.length > MAX_NOTE_LENGTH) throw new UsageError(`the note is ${note.length} characters long, more than ${MAX_NOTE_LENGTH}`, { code: 'NOTE_INVALID', hint: 'say it in a sentence, or point to the review record' });
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b-\u001f\u007f]/.test(note)) throw new UsageError('the note holds control characters', { code: 'NOTE_INVALID', hint: 'plain text and line breaks only' });
}

/** Sign a statement that the bundle (`name`, its inventory digest) is approved, and write it beside the bundle. */
export async function writeApproval(
  bundleName: string,
  bundle: ApprovalStatement['bundle'],
  key: SigningKey,
  opts: { note?: string | undefined; now?: Date | undefined } = {},
): Promise<{ file: string; signatureFile: string; statement: ApprovalStatement }> {
  checkNote(opts.note);
  const statement: ApprovalStatement = {
    type: APPROVAL_TYPE,
    bundle: { name: bundle.name, version: bundle.version, inventory: bundle.inventory },
    key: key.fingerprint,
    algorithm: key.algorithm,
    time: (opts.now ?? new Date()).toISOString(),
    ...(opts.note !== undefined && opts.note !== '' ? { note: opts.note } : {}),
  };
  const bytes = Buffer.from(canonicalJson(statement, true));
  const file = approvalFile(bundleName, key.fingerprint);
  // Both or neither; a second approval by the same key replaces the first (the newer word counts).
  await writeFilesAtomic(
    [
      { path: file, data: bytes, mode: 0o644 },
      { path: `${file}.sig`, data: signPayload(key, bytes), mode: 0o644 },
    ],
    { mkdir: true },
  );
  return { file, signatureFile: `${file}.sig`, statement };
}

/** Why one demanded approval fails; undefined when it holds. */
export interface ApprovalProblem {
  key: string;
  keyPath: string;
  file: string;
  code: 'APPROVAL_MISSING' | 'APPROVAL_INVALID';
  message: string;
}

/**
 * Check the approval by each key for the bundle whose inventory digest is `inventory`: present,
 * signed by that key, naming that key and exactly this inventory. Every key is checked; the result
 * has each approval that holds and each problem (naming the key).
 */
export async function checkApprovals(bundleName: string, inventory: string, keys: readonly VerifyingKey[]): Promise<{ approved: VerifiedApproval[]; problems: ApprovalProblem[] }> {
  const approved: VerifiedApproval[] = [];
  const problems: ApprovalProblem[] = [];
  for (const key of keys) {
    const r = await checkOne(bundleName, inventory, key);
    if ('message' in r) problems.push(r);
    else approved.push(r);
  }
  return { approved, problems };
}

async function checkOne(bundleName: string, inventory: string, key: VerifyingKey): Promise<VerifiedApproval | ApprovalProblem> {
  const file = approvalFile(bundleName, key.fingerprint);
  const who = `${key.path} (${key.fingerprint})`;
  const problem = (code: ApprovalProblem['code'], message: string): ApprovalProblem => ({ key: key.fingerprint, keyPath: key.path, file, code, message });
  const bytes = await readOptional(file);
  if (bytes === undefined) return problem('APPROVAL_MISSING', `not approved by the key ${who}: no ${file}`);
  const sig = await readOptional(`${file}.sig`);
  if (sig === undefined) return problem('APPROVAL_INVALID', `the approval by the key ${who} has no signature: ${file}.sig is missing`);
  if (!verifyPayload(key, bytes, sig)) return problem('APPROVAL_INVALID', `the approval ${file} does not verify with the key ${who}: it was changed after signing, or made with another key`);
  let s: Partial<ApprovalStatement>;
  try {
    s = JSON.parse(bytes.toString('utf8')) as Partial<ApprovalStatement>;
  } catch {
    return problem('APPROVAL_INVALID', `the approval ${file} by the key ${who} is not JSON`);
  }
  if (s.type !== APPROVAL_TYPE || typeof s.bundle !== 'object' || s.bundle === null || typeof s.time !== 'string') return problem('APPROVAL_INVALID', `the approval ${file} by the key ${who} is not an airlock approval (${APPROVAL_TYPE})`);
  if (s.key !== key.fingerprint) return problem('APPROVAL_INVALID', `the approval ${file} names the key ${String(s.key)}, but the key ${who} signed it`);
  if (s.bundle.inventory !== inventory) {
    return problem('APPROVAL_INVALID', `the approval by the key ${who} is for another bundle (inventory ${String(s.bundle.inventory)}); this bundle's inventory is ${inventory}: it changed after approval, or the approval was copied from another bundle`);
  }
  return { key: key.fingerprint, keyPath: key.path, time: s.time, ...(typeof s.note === 'string' ? { note: s.note } : {}), file };
}

/** Throw (IntegrityError naming every key that fails) unless each key approved this bundle. */
export async function requireApprovals(bundleName: string, inventory: string, keys: readonly VerifyingKey[]): Promise<VerifiedApproval[]> {
  const { approved, problems } = await checkApprovals(bundleName, inventory, keys);
  if (problems.length > 0) {
    throw new IntegrityError(problems.map((p) => p.message).join('; '), {
      code: problems.some((p) => p.code === 'APPROVAL_INVALID') ? 'APPROVAL_INVALID' : 'APPROVAL_MISSING',
      hint: `approve it with \`airlock approve ${bundleName} --key REVIEWER.key\` (and copy ${approvalsDir(bundleName)}/ beside the bundle), or do not demand that approval`,
    });
  }
  return approved;
}

/** An approval found beside a bundle, for the record: verified when a key given checked it, else a claim. */
export interface CarriedApproval {
  key: string;
  time: string;
  verified: boolean;
  note?: string;
}

/**
 * Every approval statement beside the bundle that names this inventory: those in `verified` as
 * verified, the others as claims (their signature unchecked: no key was given for them).
 */
export async function carriedApprovals(bundleName: string, inventory: string, verified: readonly VerifiedApproval[]): Promise<CarriedApproval[]> {
  const out: CarriedApproval[] = verified.map((a) => ({ key: a.key, time: a.time, verified: true, ...(a.note !== undefined ? { note: a.note } : {}) }));
  let names: string[];
  try {
    names = await readdir(approvalsDir(bundleName));
  } catch {
    return out;
  }
  for (const n of names.filter((x) => /^[0-9a-f]{64}\.json$/.test(x)).sort()) {
    if (out.some((a) => a.key === `sha256:${n.slice(0, 64)}`)) continue;
    const bytes = await readOptional(join(approvalsDir(bundleName), n));
    if (!bytes) continue;
    try {
      const s = JSON.parse(bytes.toString('utf8')) as Partial<ApprovalStatement>;
      if (s.type === APPROVAL_TYPE && s.bundle?.inventory === inventory && typeof s.key === 'string' && typeof s.time === 'string') out.push({ key: s.key, time: s.time, verified: false, ...(typeof s.note === 'string' ? { note: s.note } : {}) });
    } catch {
      // Not an approval: nothing to record.
    }
  }
  return out;
}

async function readOptional(path: string): Promise<Buffer | undefined> {
  try {
    return await readFile(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return undefined;
    throw fileError(e, path, 'read the approval');
  }
}
