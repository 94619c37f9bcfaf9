// Token scopes (`repository:library/nginx:pull,push`) in one canonical form, so the same access
// asked for in another order hits the same cached token and the token server sees each resource once.

/** `type:name:actions` → parts; names may hold ':' (a host:port inside a name), so split at both ends. */
function splitScope(scope: string): { resource: string; actions: string[] } | undefined {
  const first = scope.indexOf(':');
  const last = scope.lastIndexOf(':');
  if (first <= 0 || last <= first) return undefined;
  return { resource: scope.slice(0, last), actions: scope.slice(last + 1).split(',').filter((a) => a.length > 0) };
}

/**
 * Merge scopes per resource, sort and de-duplicate actions and resources. Strings that are not
 * `type:name:actions` are kept as they are (a token server may define its own), de-duplicated.
 */
export function normalizeScopes(scopes: Iterable<string>): string[] {
  const byResource = new Map<string, Set<string>>();
  const opaque = new Set<string>();
  for (const raw of scopes) {
    for (const scope of raw.split(' ')) {
      if (scope.length === 0) continue;
      const parsed = splitScope(scope);
      if (!parsed) {
        opaque.add(scope);
        continue;
      }
      let actions = byResource.get(parsed.resource);
      if (!actions) byResource.set(parsed.resource, (actions = new Set()));
      for (const a of parsed.actions) actions.add(a);
    }
  }
  const out = [...opaque];
  for (const [resource, actions] of byResource) out.push(`${resource}:${[...actions].sort().join(',')}`);
  return out.sort();
}
