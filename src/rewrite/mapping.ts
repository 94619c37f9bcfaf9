// The one image mapping: `host/path:tag` → `REGISTRY/PREFIX/path:tag` (or, keeping the host,
// `REGISTRY/PREFIX/host/path:tag`). push, serve, rewrite, post-render and mirrors-config all use it,
// so what push put somewhere is exactly where rewriting points.
import { ConflictError, UsageError } from '../core/errors.ts';
import { formatReference, isValidRegistry, isValidRepository, type Reference } from '../core/reference.ts';
import type { Digest } from '../core/digest.ts';

export interface Target {
  registry: string;
  /** Path prefix inside the target registry, without slashes at either end; '' for none. */
  prefix: string;
  /**
   * Pinned digests the target does not hold, each with the digest to point at instead: an upstream
   * index whose push fell back to the reduced index (digest-map.ts). Absent: digests stay as written.
   */
  digests?: ReadonlyMap<string, Digest> | undefined;
  /**
   * Keep the source registry's host as the first path component under the prefix
   * (`quay.io/x/app:1` → `R/P/quay.io/x/app:1`), so images that differ only by host do not collide.
   */
  keepHost?: boolean | undefined;
}

/** Parse `REGISTRY[/PREFIX]`, e.g. `harbor.internal:8443/mirror`. */
export function parseTarget(input: string, opts: { keepHost?: boolean | undefined } = {}): Target {
  const trimmed = input.replace(/^(https?|docker|oci):\/\//, '').replace(/\/+$/, '');
  const slash = trimmed.indexOf('/');
  const registry = slash < 0 ? trimmed : trimmed.slice(0, slash);
  const prefix = slash < 0 ? '' : trimmed.slice(slash + 1);
  if (!isValidRegistry(registry) || registry === '') {
    throw new UsageError(`invalid target registry "${input}": expected REGISTRY[/PREFIX], e.g. registry.internal:5000/mirror`, { code: 'TARGET_INVALID' });
  }
  if (prefix !== '' && !isValidRepository(prefix)) {
    throw new UsageError(`invalid prefix "${prefix}" in "${input}": lowercase path components joined by /`, { code: 'TARGET_INVALID' });
  }
  return { registry, prefix, ...(opts.keepHost === true ? { keepHost: true } : {}) };
}

export function formatTarget(t: Target): string {
  return t.prefix ? `${t.registry}/${t.prefix}` : t.registry;
}

/**
 * A registry host as a repository path component: lowercase (hosts are case-insensitive), a port's
 * `:` as `_` (`localhost:5000` → `localhost_5000`), the brackets of an IPv6 literal dropped.
 */
export function hostComponent(registry: string): string {
  const c = registry.toLowerCase().replace(/^\[|\](?=:|$)/g, '').replaceAll(':', '_');
  if (!isValidRepository(c) || c.includes('/')) {
    throw new UsageError(`the registry host "${registry}" cannot be a repository path component (as --keep-host needs)`, { code: 'TARGET_INVALID', hint: 'push images from this registry without --keep-host, under a prefix of their own' });
  }
  return c;
}

/** The path an image's repository goes under in the target: the prefix, and the source host when kept. */
export function pathPrefixFor(registry: string, target: Target): string {
  const host = target.keepHost === true ? hostComponent(registry) : '';
  return [target.prefix, host].filter((s) => s !== '').join('/');
}

/** Where an image lives in the target registry. */
export function mapReference(ref: Reference, target: Target): Reference {
  const prefix = pathPrefixFor(ref.registry, target);
  return {
    registry: target.registry,
    repository: prefix ? `${prefix}/${ref.repository}` : ref.repository,
    tag: ref.tag,
    digest: ref.digest !== undefined ? (target.digests?.get(ref.digest) ?? ref.digest) : undefined,
  };
}

/**
 * Map many references at once; two different sources landing on one target name is an error
 * raised before anything is sent (e.g. docker.io/x/app:1 and quay.io/x/app:1).
 */
export function mapAll(refs: readonly Reference[], target: Target): Map<string, Reference> {
  const out = new Map<string, Reference>();
  const byTarget = new Map<string, string>();
  for (const ref of refs) {
    const src = formatReference(ref);
    const mapped = mapReference(ref, target);
    const key = `${mapped.registry}/${mapped.repository}:${mapped.tag ?? mapped.digest}`;
    const other = byTarget.get(key);
    if (other !== undefined && other !== src) {
      throw new ConflictError(`${other} and ${src} would both be pushed to ${formatReference({ ...mapped, digest: undefined })}`, {
        code: 'TARGET_CONFLICT',
        hint: 'keep each registry host in the path (--keep-host: R/P/<host>/<path>), push them with different prefixes, or drop one from airlock.yaml',
      });
    }
    byTarget.set(key, src);
    out.set(src, mapped);
  }
  return out;
}

/**
 * Sources that would land on one name in a target registry (they differ only by registry host:
 * docker.io/x/app:1 and quay.io/x/app:1), as pairs of their references; none when there are none.
 */
export function collisions(refs: readonly Reference[], target: Target = { registry: 'registry.internal', prefix: '' }): [string, string][] {
  const byTarget = new Map<string, string>();
  const out: [string, string][] = [];
  for (const ref of refs) {
    const src = formatReference(ref);
    const mapped = mapReference(ref, target);
    const key = `${mapped.repository}:${mapped.tag ?? mapped.digest}`;
    const other = byTarget.get(key);
    if (other !== undefined && other !== src) out.push([other, src]);
    else byTarget.set(key, src);
  }
  return out;
}
