// The record of imports on the isolated side: every `push` and `serve` appends one JSON line —
// which bundle, its inventory digest (identity), the key given that verified its signature (else
// only the key the bundle claims, recorded as a claim), when, and to where — to $AIRLOCK_STATE/history.jsonl (else $XDG_STATE_HOME/airlock/,
// else ~/.local/state/airlock/). The file is only ever appended to (O_APPEND, one write per line,
// fsynced, under a lock file so that runs at once chain one after the other), and each line carries the sha256 of the line before it, so an edited, removed or
// reordered line shows as a break in the chain when the history is read.
import { createHash } from 'node:crypto';
import { mkdir, open, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { NotFoundError } from '../core/errors.ts';
import { withFileLock } from '../util/atomic-file.ts';

export const HISTORY_FILE = 'history.jsonl';
const GENESIS = `sha256:${'0'.repeat(64)}`;

export interface HistoryRecord {
  action: 'push' | 'serve';
  /** Absolute path of the bundle (a split bundle's shared name). */
  bundle: string;
  name: string;
  version: string;
  /** sha256 of the bundle's airlock/inventory.json. */
  inventory: string;
  /** Fingerprint of the key the user gave (--key) that verified the bundle's signature; null when none did. */
  key: string | null;
  /** The signature was checked against a key the user gave (--key) and holds. */
  verified: boolean;
  /** A signed bundle not verified: the key its airlock/signature.json names — a claim, not a signer. */
  claimedKey?: string | undefined;
  /** A delta: the base it was packed against. */
  delta?: { inventory: string; name: string; version: string } | undefined;
  /** `registry/prefix` for push, the URL for serve. */
  target: string;
  /** push --keep-host (serve --keep-host): images went under their source host, `target/<host>/<path>`. */
  keepHost?: true | undefined;
  images: number;
  /**
   * push of images whose index the bundle carries reduced to some platforms: for each, which index
   * the registry holds under its tag. `reduced`: it refused the upstream index, so references
   * pinned to `original` must be mapped to `reduced` (post-render and rewrite read this).
   */
  indexes?: PushedIndex[] | undefined;
  /**
   * The approvals beside the bundle (BUNDLE.approvals/, `airlock approve`) naming its inventory:
   * `verified` when demanded (--approved-by) and checked with the key given, else only claimed.
   */
  approvals?: HistoryApproval[] | undefined;
}

/** A reviewer's approval as recorded: the key's fingerprint and when it approved. */
export interface HistoryApproval {
  key: string;
  time: string;
  verified: boolean;
  note?: string;
}

/** One reduced index pushed: the upstream digest charts pin, the reduced one, and which the tag holds. */
export interface PushedIndex {
  /** The image as the bundle names it. */
  image: string;
  /** Where it was pushed (`R/P/path:tag`). */
  target: string;
  original: string;
  reduced: string;
  kept: 'original' | 'reduced';
}

export interface HistoryEntry extends HistoryRecord {
  /** ISO 8601, UTC. */
  time: string;
  /** sha256 of the previous line's bytes (zeros for the first line). */
  prev: string;
}

export function historyPath(env: NodeJS.ProcessEnv = process.env): string {
  if (env.AIRLOCK_STATE) return join(env.AIRLOCK_STATE, HISTORY_FILE);
  const base = env.XDG_STATE_HOME || join(homedir(), '.local', 'state');
  return join(base, 'airlock', HISTORY_FILE);
}

/** Append one record; returns the entry as written. */
export async function appendHistory(record: HistoryRecord, opts: { path?: string; now?: Date } = {}): Promise<HistoryEntry> {
  const path = opts.path ?? historyPath();
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  // Reading the last line and appending after it is one step: two pushes at once would both
  // chain to the same line, and the history would read as tampered with.
  return await withFileLock(`${path}.lock`, () => appendLocked(path, record, opts.now));
}

async function appendLocked(path: string, record: HistoryRecord, now: Date | undefined): Promise<HistoryEntry> {
  const fh = await open(path, 'a+', 0o600);
  try {
    const { size } = await fh.stat();
    let prev = GENESIS;
    if (size > 0) {
      const tail = Buffer.alloc(Math.min(size, 1024 * 1024));
      await fh.read(tail, 0, tail.length, size - tail.length);
      const text = tail.toString('utf8').replace(/\n$/, '');
      prev = lineDigest(text.slice(text.lastIndexOf('\n') + 1));
    }
    const entry: HistoryEntry = { time: (now ?? new Date()).toISOString(), ...record, prev };
    if (entry.delta === undefined) delete entry.delta;
    if (entry.claimedKey === undefined) delete entry.claimedKey;
    if (entry.indexes === undefined) delete entry.indexes;
    if (entry.keepHost === undefined) delete entry.keepHost;
    if (entry.approvals === undefined) delete entry.approvals;
    await fh.write(`${JSON.stringify(entry)}\n`);
    await fh.sync();
    return entry;
  } finally {
    await fh.close();
  }
}

export interface HistoryRead {
  path: string;
  entries: HistoryEntry[];
  /** Lines that do not parse, or whose `prev` is not the digest of the line before. */
  broken: { line: number; message: string }[];
}

export async function readHistory(opts: { path?: string } = {}): Promise<HistoryRead> {
  const path = opts.path ?? historyPath();
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return { path, entries: [], broken: [] };
    throw new NotFoundError(`cannot read the history ${path}: ${(e as Error).message}`, { cause: e });
  }
  const entries: HistoryEntry[] = [];
  const broken: { line: number; message: string }[] = [];
  let prev = GENESIS;
  const lines = text.split('\n');
  if (lines.at(-1) === '') lines.pop();
  lines.forEach((line, i) => {
    let entry: HistoryEntry | undefined;
    try {
      entry = JSON.parse(line) as HistoryEntry;
    } catch {
      broken.push({ line: i + 1, message: 'not a JSON line' });
    }
    if (entry) {
      if (entry.prev !== prev) broken.push({ line: i + 1, message: 'the chain breaks here: a line before it was changed, removed or reordered' });
      entries.push(entry);
    }
    prev = lineDigest(line);
  });
  return { path, entries, broken };
}

function lineDigest(line: string): string {
  return `sha256:${createHash('sha256').update(line).digest('hex')}`;
}
