// What a capture records: one NDJSON line per manifest or blob a node asked for, as it was
// answered. The raw log is kept for audits (`--record`); everything else a capture reports (the
// images pulled, the upstreams asked for, the spec it writes) is derived from these lines alone,
// so a record read back later gives the same summary as the live run.
import type { WriteStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { UsageError } from '../core/errors.ts';
import { fileError } from '../util/file-error.ts';

/**
 * - `ok`: answered whole, every byte checked against its digest (a HEAD: answered).
 * - `refused`: the upstream's bytes did not match the digest; the node did not get them whole.
 * - `not-found`: the upstream has no such manifest or blob.
 * - `failed`: the upstream could not be asked (network, credentials, TLS) or answered an error.
 * - `incomplete`: the node went away (or the capture stopped) before the answer was complete.
 */
export type PullOutcome = 'ok' | 'refused' | 'not-found' | 'failed' | 'incomplete';

export interface PullRecord {
  type: 'pull';
  /** When the answer ended (ISO 8601). */
  time: string;
  /** The node's address. */
  client: string;
  /** The upstream registry the node asked for (`?ns=`, or the default upstream). */
  registry: string;
  repository: string;
  kind: 'manifest' | 'blob';
  method: string;
  /** What the node asked for: a tag or a digest. */
  reference: string;
  /** The digest answered (known once the upstream answered). */
  digest?: string | undefined;
  mediaType?: string | undefined;
  size?: number | undefined;
  /** A manifest pulled under an index the capture relayed: the platform the node chose, and that index. */
  platform?: string | undefined;
  index?: string | undefined;
  /** The HTTP status the node got (200 with `refused`: the body was cut before its end). */
  status: number;
  outcome: PullOutcome;
  error?: string | undefined;
  /** The airlock error code behind a failure, when there is one. */
  code?: string | undefined;
  ms: number;
}

/** The first line a run appends: when it started and where it listened. */
export interface CaptureStartRecord {
  type: 'capture-start';
  time: string;
  url: string;
  defaultRegistry: string;
}

export type CaptureLine = PullRecord | CaptureStartRecord;

/** Appends records as NDJSON; close() flushes. A record file is appended to, never replaced. */
export class RecordWriter {
  readonly path: string;
  readonly #stream: WriteStream;
  #failure: Error | undefined;

  private constructor(path: string, stream: WriteStream) {
    this.path = path;
    this.#stream = stream;
    stream.on('error', (e) => {
      this.#failure ??= fileError(e, path, 'write the capture record') as Error;
    });
  }

  static async open(path: string): Promise<RecordWriter> {
    // Opened up front so a bad path fails before the capture listens.
    const fh = await open(path, 'a').catch((e: unknown) => {
      throw fileError(e, path, 'open the capture record');
    });
    return new RecordWriter(path, fh.createWriteStream());
  }

  write(line: CaptureLine): void {
    if (this.#failure || this.#stream.destroyed || this.#stream.writableEnded) return;
    this.#stream.write(`${JSON.stringify(line)}\n`);
  }

  async close(): Promise<void> {
    if (!this.#stream.destroyed) {
      await new Promise<void>((resolve) => {
        this.#stream.end(() => resolve());
        this.#stream.once('error', () => resolve());
      });
    }
    if (this.#failure) throw this.#failure;
  }
}

/** The pull records of a record file (every run in it). */
export async function readRecord(path: string): Promise<PullRecord[]> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    throw fileError(e, path, 'read the capture record');
  }
  const out: PullRecord[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (line === '') continue;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      // A run killed mid-write leaves its last line cut: that line alone is lost.
      if (i === lines.length - 1 || lines.slice(i + 1).every((l) => l.trim() === '')) continue;
      throw new UsageError(`${path}:${i + 1}: not a capture record line (NDJSON expected)`, { code: 'INPUT_INVALID', hint: 'pass the file `airlock capture --record` wrote' });
    }
    const r = v as Partial<PullRecord>;
    if (r.type !== 'pull') continue;
    if (typeof r.registry !== 'string' || typeof r.repository !== 'string' || (r.kind !== 'manifest' && r.kind !== 'blob') || typeof r.reference !== 'string') {
      throw new UsageError(`${path}:${i + 1}: a pull record needs registry, repository, kind and reference`, { code: 'INPUT_INVALID' });
    }
    out.push(r as PullRecord);
  }
  return out;
}
