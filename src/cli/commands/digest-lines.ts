// post-render and rewrite say, for each index the bundle carries reduced, what became of pins to its upstream digest.
import type { DigestMapping } from '../../api/pinned-digests.ts';

export function digestLines(decisions: readonly DigestMapping[], registry: string): string[] {
  return decisions.map((d) => {
    const short = (x: string): string => x.slice(0, 19);
    if (d.why === 'kept') return `digest: ${d.image}: pins to ${short(d.original)} left as written (push stored the upstream index in ${registry})`;
    const why = d.why === 'refused' ? `the registry refused the upstream index at push` : `no push of it to ${registry} in the import history; the reduced index is there by its digest either way`;
    return `digest: ${d.image}: pins to ${short(d.original)} mapped to the reduced index ${short(d.reduced)} (${why})`;
  });
}
