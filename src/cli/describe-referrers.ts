// "1 signature, 2 sboms": what refers to an image, in a line (lock, pack and push print it).

/** Counts by kind, in the order first met; the referrers tag schema's own index is left out. */
export function describeReferrers(list: readonly { kind: string }[]): string {
  const counts = new Map<string, number>();
  for (const r of list) if (r.kind !== 'referrers-index') counts.set(r.kind, (counts.get(r.kind) ?? 0) + 1);
  return [...counts].map(([kind, n]) => `${n} ${kind}${n === 1 ? '' : 's'}`).join(', ');
}
