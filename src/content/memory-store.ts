// Storage held in memory: for library users assembling or inspecting content without disk or
// network, and for tests. Like every sink it verifies while content streams in, so it only ever
// holds the right bytes. Everything is kept whole in memory: meant for manifests and small blobs.
import { Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { IntegrityError, NotFoundError, UsageError, throwIfAborted } from '../core/errors.ts';
import { parseDigest, verifyBytes } from '../core/digest.ts';
import { isManifestDescriptor, type Descriptor } from '../core/manifest.ts';
import { isValidTag } from '../core/reference.ts';
import { asAborted } from './file-store.ts';
import type { OpOptions, ReferencePusher, Storage, TagResolver } from './types.ts';
import { destroyOnAbort, markSelfVerifying, VerifyStream } from './verify-stream.ts';

/** Bytes per chunk of a fetched stream: a consumer sees backpressure as from any other source. */
const CHUNK = 64 * 1024;

export class MemoryStore implements Storage, TagResolver, ReferencePusher {
  /** Names the store in errors (default "the memory store"). */
  readonly label: string;
  /** By digest: the descriptor it was pushed with and its verified bytes. */
  readonly #content = new Map<string, { desc: Descriptor; bytes: Buffer }>();
  readonly #tags = new Map<string, Descriptor>();

  constructor(opts: { label?: string } = {}) {
    this.label = opts.label ?? 'the memory store';
  }

  async exists(desc: Descriptor, opts: OpOptions = {}): Promise<boolean> {
    throwIfAborted(opts.signal);
    return this.#content.get(desc.digest)?.bytes.length === desc.size;
  }

  async fetch(desc: Descriptor, opts: OpOptions = {}): Promise<Readable> {
    throwIfAborted(opts.signal);
    const held = this.#content.get(desc.digest);
    if (!held) throw new NotFoundError(`${desc.digest} is not in ${this.label}`, { code: isManifestDescriptor(desc) ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN' });
    if (held.bytes.length !== desc.size) {
      throw new IntegrityError(`${desc.digest} is ${held.bytes.length} bytes in ${this.label}, its descriptor says ${desc.size}`, { code: 'SIZE_MISMATCH' });
    }
    const bytes = held.bytes;
    let at = 0;
    const stream = new Readable({
      read() {
        if (at >= bytes.length) {
          this.push(null);
          return;
        }
        const end = Math.min(at + CHUNK, bytes.length);
        // Copies: a consumer that writes into a chunk must not change what the store holds.
        this.push(Buffer.from(bytes.subarray(at, end)));
        at = end;
      },
    });
    destroyOnAbort(stream, opts.signal);
    // Verified when pushed and handed out as copies: these bytes match the digest.
    return markSelfVerifying(stream, desc);
  }

  async push(desc: Descriptor, content: Readable, opts: OpOptions = {}): Promise<void> {
    if (await this.exists(desc, opts)) {
      content.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    const collect = new Writable({
      write(chunk: Buffer, _enc, cb) {
        chunks.push(Buffer.from(chunk));
        cb();
      },
    });
    try {
      await pipeline(content, new VerifyStream(desc, desc.digest), collect, { signal: opts.signal });
    } catch (e) {
      throw asAborted(e, opts.signal);
    }
    this.#content.set(desc.digest, { desc: { mediaType: desc.mediaType, digest: desc.digest, size: desc.size }, bytes: Buffer.concat(chunks, desc.size) });
  }

  /** The descriptor of a tag, or of content pushed under a digest. */
  async resolve(reference: string, opts: OpOptions = {}): Promise<Descriptor> {
    throwIfAborted(opts.signal);
    const found = reference.includes(':') ? this.#content.get(parseDigest(reference, 'digest to resolve'))?.desc : this.#tags.get(checkTag(reference));
    if (!found) throw new NotFoundError(`${reference} is not in ${this.label}`, { code: 'MANIFEST_UNKNOWN' });
    return { ...found };
  }

  /** Store a manifest and, when `reference` is a tag, point the tag at it (moving it if it exists). */
  async pushReference(desc: Descriptor, content: Uint8Array, reference: string, opts: OpOptions = {}): Promise<void> {
    throwIfAborted(opts.signal);
    const tag = reference.includes(':') ? undefined : checkTag(reference);
    if (tag === undefined && parseDigest(reference, `digest to push ${desc.digest} under`) !== desc.digest) {
      throw new IntegrityError(`${desc.digest} cannot be stored under the digest ${reference}`, { code: 'DIGEST_MISMATCH' });
    }
    verifyBytes(content, desc, desc.digest);
    const stored = { mediaType: desc.mediaType, digest: desc.digest, size: desc.size };
    if (!this.#content.has(desc.digest)) this.#content.set(desc.digest, { desc: stored, bytes: Buffer.from(content) });
    if (tag !== undefined) this.#tags.set(tag, stored);
  }
}

function checkTag(tag: string): string {
  if (!isValidTag(tag)) {
    throw new UsageError(`invalid tag "${tag}": letters, digits, _ . -, at most 128, not starting with . or -`, { code: 'TAG_INVALID' });
  }
  return tag;
}
