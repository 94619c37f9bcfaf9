// `discover --write`: merge discovered images into airlock.yaml through the yaml Document API, so
// every entry and comment a person wrote stays as it was. New images are appended, each with a
// comment naming why it is needed. The file is replaced atomically (util/atomic-file.ts) and
// only after the result validates as a spec: on any error it is left untouched.
import { readFile } from 'node:fs/promises';
import { basename, dirname } from 'node:path';
import { isMap, isScalar, isSeq, parseDocument, type Document, type Scalar } from 'yaml';
import { UsageError } from '../core/errors.ts';
import { switchFlags } from './switches.ts';
import { writeFileAtomic } from '../util/atomic-file.ts';
import { fileError } from '../util/file-error.ts';
import { formatReference, parseReference } from '../core/reference.ts';
import { API_VERSION, parseSpec } from '../spec/spec.ts';
import type { Finding, Reason } from './types.ts';

export interface WriteSpecOptions {
  /** metadata.name for a new spec (default: derived from the spec's directory). */
  name?: string;
}

export interface WriteSpecResult {
  path: string;
  /** References appended, in order. */
  added: string[];
  /** Discovered images the spec already had (in any spelling of the same reference). */
  alreadyPresent: string[];
  created: boolean;
  /** False when nothing had to change: the file was not touched. */
  written: boolean;
}

function oneLine(s: string): string {
  return s.replace(/[\r\n]+/g, ' ').trim();
}

function describeReason(r: Reason): string {
  const from = r.chart !== undefined ? `chart ${r.chart}` : (r.origin ?? 'manifests');
  if (r.source === 'values') return `from chart ${r.chart ?? '?'} values: ${r.path}`;
  return `from ${from}: ${r.resource} ${r.path}`;
}

/** The comment written above a new entry: its first reason, and how to switch an optional one on. */
export function commentFor(f: Finding): string {
  const first = f.reasons[0];
  let text = first ? describeReason(first) : 'found by airlock discover';
  if (f.reasons.length > 1) text += ` (+${f.reasons.length - 1} more)`;
  if (f.optional) {
    const on = switchFlags(f.optional);
    text += on.length === 0 ? '; optional' : `; optional: ${on.join(' ')}`;
  }
  return ` ${oneLine(text)}`;
}

function normalised(text: string): string | undefined {
  try {
    return formatReference(parseReference(text));
  } catch {
    return undefined;
  }
}

function specNameFor(path: string, given: string | undefined): string {
  const raw = (given ?? basename(dirname(path))).toLowerCase().replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+|[^a-z0-9]+$/g, '');
  return raw.slice(0, 63).replace(/[^a-z0-9]+$/, '') || 'app';
}

/** Merge `findings` into the spec at `path` (created if missing). */
export async function writeDiscoveredToSpec(path: string, findings: readonly Finding[], opts: WriteSpecOptions = {}): Promise<WriteSpecResult> {
  return await mergeImagesIntoSpec(path, findings.map((f) => ({ reference: f.reference, comment: commentFor(f) })), { ...opts, header: ' Written by `airlock discover --write`. Edit freely: later runs keep your entries and comments.' });
}

/** An image to add to a spec, with the comment written above it. */
export interface SpecEntry {
  /** Normalised (formatReference). */
  reference: string;
  comment: string;
  /** Other normalised spellings that count as this image being listed already (e.g. unpinned). */
  aliases?: readonly string[];
}

/**
 * Add `entries` to the spec at `path` (created if missing, with `header` as its first comment),
 * keeping everything already there: the one merge discover --write and capture --write share.
 */
export async function mergeImagesIntoSpec(path: string, entries: readonly SpecEntry[], opts: WriteSpecOptions & { header: string }): Promise<WriteSpecResult> {
  let text: string | undefined;
  try {
    text = await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw fileError(e, path, 'read the spec file');
  }
  const created = text === undefined;
  let doc: Document;
  if (text === undefined) {
    doc = parseDocument(`apiVersion: ${API_VERSION}\nkind: Bundle\nmetadata:\n  name: ${specNameFor(path, opts.name)}\n  version: 0.1.0\n`);
    doc.commentBefore = opts.header;
  } else {
    doc = parseDocument(text, { prettyErrors: true });
    if (doc.errors.length > 0) {
      throw new UsageError(`${path}: not valid YAML: ${doc.errors[0]!.message.split('\n')[0]}`, { code: 'SPEC_INVALID', hint: 'fix the spec first; it was not changed' });
    }
    if (!isMap(doc.contents)) throw new UsageError(`${path}: expected a mapping with apiVersion, kind, metadata and images`, { code: 'SPEC_INVALID' });
  }

  let images = doc.get('images', true);
  if (images === undefined || images === null || (isScalar(images) && (images as Scalar).value === null)) {
    doc.set('images', doc.createNode([]));
    images = doc.get('images', true);
  }
  if (!isSeq(images)) throw new UsageError(`${path}: images must be a list of image references`, { code: 'SPEC_INVALID', hint: 'fix the spec first; it was not changed' });

  const present = new Set<string>();
  for (const item of images.items) {
    const v = isScalar(item) ? item.value : item;
    if (typeof v === 'string') present.add(normalised(v) ?? v);
  }
  const added: string[] = [];
  const alreadyPresent: string[] = [];
  for (const f of entries) {
    if (present.has(f.reference) || (f.aliases ?? []).some((a) => present.has(a))) {
      alreadyPresent.push(f.reference);
      continue;
    }
    const node = doc.createNode(f.reference) as Scalar;
    node.commentBefore = f.comment;
    images.items.push(node);
    present.add(f.reference);
    added.push(f.reference);
  }
  if (added.length === 0) return { path, added, alreadyPresent, created, written: false };
  // Block style for the list we add to, even when a person wrote `images: []`.
  images.flow = false;

  const out = doc.toString({ lineWidth: 0, flowCollectionPadding: false });
  try {
    parseSpec(out, path);
  } catch (e) {
    throw new UsageError(`${path}: the spec would not be valid after adding the images (${(e as Error).message}); it was not changed`, {
      code: 'SPEC_INVALID',
      cause: e,
    });
  }
  // The replaced spec keeps its permission bits (the writer's default).
  await writeFileAtomic(path, out);
  return { path, added, alreadyPresent, created, written: true };
}
