// The one image mapping: `host/path:tag` → `REGISTRY/PREFIX/path:tag`. push, serve, rewrite and
// mirrors-config all use it, so what push put somewhere is exactly where rewriting points.
import { ConflictError, UsageError } from '../core/errors.ts';
import { formatReference, isValidRegistry, isValidRepository, type Reference } from '../core/reference.ts';

export interface Target {
  registry: string;
  /** Path prefix inside the target registry, without slashes at either end; '' for none. */
  prefix: string;
}

/** Parse `REGISTRY[/PREFIX]`, e.g. `harbor.internal:8443/mirror`. */
export function parseTarget(input: string): Target {
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
  return { registry, prefix };
}

export function formatTarget(t: Target): string {
  return t.prefix ? `${t.registry}/${t.prefix}` : t.registry;
}

/** Where an image lives in the target registry. */
export function mapReference(ref: Reference, target: Target): Reference {
  return {
    registry: target.registry,
    repository: target.prefix ? `${target.prefix}/${ref.repository}` : ref.repository,
    tag: ref.tag,
    digest: ref.digest,
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
        hint: 'push them with different prefixes, or drop one from airlock.yaml',
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
