// Image references found again inside a string and mapped in place (pure). Discovery says which
// strings hold which images; this finds the literal as it was written (`nginx:1.27`,
// `--solver-image=ghcr.io/x/solver:v1`, `SIDECAR=quay.io/x/envoy@sha256:…`) and replaces only its
// name, so the tag and digest stay byte for byte what the author wrote, and the result is exactly
// where the one mapping (push's) puts that image.
import { formatName, formatReference, parseReference, type Reference } from '../core/reference.ts';
import { mapReference, type Target } from './mapping.ts';

/**
 * Which literals without a tag or digest may stand for a found image (matched by name only):
 *   any        the string is an image field (`image: nginx`, or a `baseImage` whose tag sits beside it)
 *   qualified  free text: only names that start with a registry host (`quay.io/x/y`)
 *   none       never
 */
export type BareNames = 'any' | 'qualified' | 'none';

export interface TextMapping {
  /** The image as discovery normalises it. */
  from: string;
  /** Where it points now (normalised). */
  to: string;
}

/**
 * Is the image already in the target registry, under its prefix? Such images are left alone —
 * unless pinned to a digest the target does not hold (Target.digests): that one still needs mapping.
 */
export function isAtTarget(ref: Reference, target: Target): boolean {
  return nameAtTarget(ref, target) && !(ref.digest !== undefined && target.digests?.has(ref.digest) === true);
}

/** The name (registry and path) is the target's already, whatever the digest. */
function nameAtTarget(ref: Reference, target: Target): boolean {
  if (ref.registry !== target.registry) return false;
  return target.prefix === '' || ref.repository.startsWith(`${target.prefix}/`);
}

/** Where the image is in the target: the one mapping, or for a name already there only its digest mapped. */
export function targetOf(ref: Reference, target: Target): Reference {
  if (!nameAtTarget(ref, target)) return mapReference(ref, target);
  return { ...ref, digest: ref.digest !== undefined ? (target.digests?.get(ref.digest) ?? ref.digest) : undefined };
}

/** `:tag@digest` as written, its digest mapped when the target holds another one for it. */
function mapDigestSuffix(suffix: string, target: Target): string {
  const at = suffix.indexOf('@');
  if (at < 0 || !target.digests) return suffix;
  const mapped = target.digests.get(suffix.slice(at + 1));
  return mapped === undefined ? suffix : `${suffix.slice(0, at + 1)}${mapped}`;
}

function tryParse(text: string): Reference | undefined {
  try {
    return parseReference(text);
  } catch {
    return undefined;
  }
}

/** `name[:tag][@digest]` split where the author's name ends; the rest is kept as written. */
function nameEnd(text: string): number {
  const at = text.indexOf('@');
  const rest = at < 0 ? text : text.slice(0, at);
  const colon = rest.lastIndexOf(':');
  return colon > rest.lastIndexOf('/') ? colon : rest.length;
}

function namesRegistry(name: string): boolean {
  const slash = name.indexOf('/');
  if (slash < 0) return false;
  const first = name.slice(0, slash);
  return first.includes('.') || first.includes(':') || first === 'localhost';
}

/** Parsed `refs`, ready for matching: by full reference and, for bare literals, by name. */
export class ImageSet {
  readonly #full = new Map<string, Reference>();
  readonly #names = new Map<string, Reference>();

  constructor(references: Iterable<string | Reference>) {
    for (const r of references) {
      const ref = typeof r === 'string' ? tryParse(r) : r;
      if (!ref) continue;
      this.#full.set(formatReference(ref), ref);
      if (!this.#names.has(formatName(ref))) this.#names.set(formatName(ref), ref);
    }
  }

  get size(): number {
    return this.#full.size;
  }

  byReference(normalised: string): Reference | undefined {
    return this.#full.get(normalised);
  }

  /** The image of that name (registry/repository), for literals that carry no tag of their own. */
  byName(name: string): Reference | undefined {
    return this.#names.get(name);
  }
}

/**
 * Map one literal (`nginx:1.27`, `quay.io/x/y`) when it stands for an image of `images`: the
 * result is the mapped name followed by the literal's own `:tag@digest`. Undefined when it is not
 * one of them, or already at the target.
 */
export function mapLiteral(literal: string, images: ImageSet, target: Target, bare: BareNames = 'any'): { text: string; mapping: TextMapping } | undefined {
  const ref = tryParse(literal);
  if (!ref) return undefined;
  const end = nameEnd(literal);
  let found: Reference | undefined;
  if (end < literal.length) found = images.byReference(formatReference(ref));
  else if (bare === 'any' || (bare === 'qualified' && namesRegistry(literal))) found = images.byName(formatName(ref));
  if (!found || isAtTarget(ref, target)) return undefined;
  // The tag the image has (from a sibling field, or `latest`) is reported; only the name (and a
  // digest the target holds another index for) is rewritten.
  const name = nameAtTarget(ref, target) ? literal.slice(0, end) : formatName(mapReference(ref, target));
  return {
    text: `${name}${mapDigestSuffix(literal.slice(end), target)}`,
    mapping: { from: formatReference(found), to: formatReference(targetOf(found, target)) },
  };
}

// Characters a reference is made of (IPv6 hosts aside). `=`, quotes, spaces and commas end one, so
// `--flag=ref`, `"key": "ref"` and `KEY=ref` give the reference as a token of its own.
const TOKEN = /[A-Za-z0-9][A-Za-z0-9._\-/:@]*/g;

/**
 * Every literal in `text` that stands for one of `images`, mapped to the target. A token glued to a
 * key by a colon (`image:quay.io/x:1`) is tried after each colon, longest first. URLs never match
 * (`https://quay.io/x:1` does not parse), so links in args and config stay as they are.
 */
export function mapImagesInText(text: string, images: ImageSet, target: Target, bare: BareNames): { text: string; mappings: TextMapping[] } {
  const mappings: TextMapping[] = [];
  if (images.size === 0) return { text, mappings };
  const out = text.replace(TOKEN, (token) => {
    for (let start = 0; start < token.length; start = token.indexOf(':', start) + 1) {
      const candidate = token.slice(start);
      if (/^[A-Za-z0-9]/.test(candidate)) {
        const m = mapLiteral(candidate, images, target, bare);
        if (m) {
          mappings.push(m.mapping);
          return `${token.slice(0, start)}${m.text}`;
        }
      }
      if (token.indexOf(':', start) < 0) break;
    }
    return token;
  });
  return { text: out, mappings };
}
