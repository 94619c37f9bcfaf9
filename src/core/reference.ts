// Image references: the docker/distribution grammar (distribution/reference/regexp.go), parsed once
// into a validated, fully qualified value.
//
//   reference := name [ ":" tag ] [ "@" digest ]
//   name      := [ domain "/" ] path-component [ "/" path-component ]*
//   domain    := host [ ":" port ]        host: DNS name, IPv4, or [IPv6]
//
// Normalisation follows docker: a first component without ".", ":" and not "localhost" is a path on
// docker.io; single-component docker.io names live under "library/"; no tag and no digest means
// ":latest".
import { UsageError } from './errors.ts';
import { type Digest, parseDigest } from './digest.ts';

export interface Reference {
  /** Registry host with optional port, e.g. `docker.io`, `127.0.0.1:5000`, `[::1]:5000`. */
  readonly registry: string;
  /** Repository path inside the registry, e.g. `library/nginx`. */
  readonly repository: string;
  readonly tag?: string | undefined;
  readonly digest?: Digest | undefined;
}

export const DOCKER_HUB = 'docker.io';
const LEGACY_HUB_NAMES = new Set(['index.docker.io', 'registry-1.docker.io']);
const NAME_TOTAL_MAX = 255;

const ALNUM = '[a-z0-9]+';
const SEPARATOR = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALNUM}(?:${SEPARATOR}${ALNUM})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN_NAME = `${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*`;
const IPV6 = '\\[(?:[a-fA-F0-9:]+)\\]';
const HOST = `(?:${DOMAIN_NAME}|${IPV6})`;
const DOMAIN = `${HOST}(?::[0-9]+)?`;

const PATH_RE = new RegExp(`^${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const DOMAIN_RE = new RegExp(`^${DOMAIN}$`);
const TAG_RE = /^[\w][\w.-]{0,127}$/;
const IMAGE_ID_RE = /^[a-f0-9]{64}$/;

export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

export function isValidRepository(path: string): boolean {
  return PATH_RE.test(path);
}

export function isValidRegistry(host: string): boolean {
  return DOMAIN_RE.test(host);
}

function bad(input: string, why: string): UsageError {
  return new UsageError(`invalid image reference "${input}": ${why}`, {
    code: 'REFERENCE_INVALID',
    hint: 'expected [registry[:port]/]path[:tag][@sha256:<hex>], e.g. docker.io/library/nginx:1.27',
  });
}

/** Split the first path component off as a registry when docker would treat it as one. */
function splitDomain(name: string): { registry: string; path: string } {
  const slash = name.indexOf('/');
  if (slash < 0) return { registry: DOCKER_HUB, path: name };
  const first = name.slice(0, slash);
  const looksLikeHost = first.includes('.') || first.includes(':') || first === 'localhost' || first !== first.toLowerCase();
  if (!looksLikeHost) return { registry: DOCKER_HUB, path: name };
  return { registry: first, path: name.slice(slash + 1) };
}

/**
 * Split `name[:tag][@digest]` as written, checking and normalising nothing. A tag follows the last
 * ':' that comes after the last '/', so registry ports are not tags.
 */
export function splitReference(text: string): { name: string; tag: string | undefined; digest: string | undefined } {
  let name = text;
  let digest: string | undefined;
  const at = name.indexOf('@');
  if (at >= 0) {
    digest = name.slice(at + 1);
    name = name.slice(0, at);
  }
  let tag: string | undefined;
  const colon = name.lastIndexOf(':');
  if (colon > name.lastIndexOf('/')) {
    tag = name.slice(colon + 1);
    name = name.slice(0, colon);
  }
  return { name, tag, digest };
}

/**
 * Parse a reference and normalise it to its fully qualified form.
 * `nginx` → docker.io/library/nginx:latest; `quay.io/p/n:v1@sha256:…` keeps both tag and digest.
 */
export function parseReference(input: string): Reference {
  if (input.length === 0) throw bad(input, 'it is empty');
  if (input.trim() !== input) throw bad(input, 'it has leading or trailing spaces');
  // docker refuses these as names: they are image IDs, and pulling one by accident would be wrong.
  if (IMAGE_ID_RE.test(input)) throw bad(input, 'a 64-character hex string is an image ID, not a repository name');

  const shape = splitReference(input);
  let rest = shape.name;
  let digest: Digest | undefined;
  if (shape.digest !== undefined) {
    try {
      digest = parseDigest(shape.digest, 'digest');
    } catch {
      throw bad(input, `"${shape.digest}" is not a digest (sha256:<64 hex> or sha512:<128 hex>)`);
    }
  }
  let tag = shape.tag;
  if (tag !== undefined && !isValidTag(tag)) throw bad(input, `"${tag}" is not a valid tag (letters, digits, _ . -, at most 128, not starting with . or -)`);

  if (rest.length === 0) throw bad(input, 'the repository name is missing');
  let { registry, path } = splitDomain(rest);
  if (!isValidRegistry(registry)) throw bad(input, `"${registry}" is not a valid registry host[:port]`);
  if (LEGACY_HUB_NAMES.has(registry)) registry = DOCKER_HUB;
  if (path !== path.toLowerCase()) throw bad(input, 'repository names must be lowercase');
  if (!isValidRepository(path)) {
    throw bad(input, `"${path}" is not a valid repository path (lowercase letters, digits, separators . _ __ -, components joined by /)`);
  }
  if (registry === DOCKER_HUB && !path.includes('/')) path = `library/${path}`;
  if (registry.length + 1 + path.length > NAME_TOTAL_MAX) throw bad(input, `the name is longer than ${NAME_TOTAL_MAX} characters`);

  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository: path, tag, digest };
}

/** The fully qualified string form; parseReference(formatReference(r)) deep-equals r for parsed values. */
export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}

/** `registry/repository` without tag or digest. */
export function formatName(ref: Pick<Reference, 'registry' | 'repository'>): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The same image pinned to a digest, dropping nothing: tag is kept for readability. */
export function withDigest(ref: Reference, digest: Digest): Reference {
  return { registry: ref.registry, repository: ref.repository, tag: ref.tag, digest };
}

/** Host names that are this machine: plain HTTP is allowed to them without --insecure. */
export function isLoopbackHost(registry: string): boolean {
  const host = registryHostname(registry);
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** The host part of `host[:port]` (brackets of IPv6 removed). */
export function registryHostname(registry: string): string {
  if (registry.startsWith('[')) return registry.slice(1, registry.indexOf(']'));
  const colon = registry.lastIndexOf(':');
  return colon < 0 ? registry : registry.slice(0, colon);
}
