// From probe traces to values (pure): for each image at each place, which of the values it is made
// of to set, and to what, so that the name renders exactly where push put the image. Shared values
// (a global registry) are set once, in the form every image through them agrees with:
//   1. the value that starts the name mapped as a prefix (`quay.io` → R/P, `docker.io/istio` →
//      R/P/istio); if the rest of the name then differs (`busybox` behind docker.io is
//      library/busybox in R/P), one other value of the name is fixed too;
//   2. else one value alone, solved for (`vendor.example/app/admin` → R/P/app/admin);
//   3. else the registry value set to R and one other value solved for.
// The model is string substitution into the probe's rendered reference; the render afterwards is
// the proof.
import { formatReference, parseReference } from '../core/reference.ts';
import { formatTarget, type Target } from './mapping.ts';
import { namePrefix, normalised, substitute, type ProbeLeaf, type Trace } from './value-probe.ts';
import { targetOf } from './image-text.ts';

export interface TracedPair {
  /** Stable key of the (place, image) pair. */
  key: string;
  image: string;
  trace: Trace;
}

export interface Solution {
  /** Leaf id → value, for every pair solved. */
  values: Map<number, string>;
  /** Pair key → the leaf ids its solution sets. */
  uses: Map<string, number[]>;
  /** Pairs no values can redirect. */
  unsolved: string[];
}

function expectedOf(image: string, target: Target): string {
  return formatReference(targetOf(parseReference(image), target));
}

/** Does the trace, with these values set, render exactly `expected`? Digests pinned in values are handled apart. */
function renders(trace: Trace, values: ReadonlyMap<number, string>, expected: string, digests: ReadonlyMap<string, string>): boolean {
  let text = substitute(trace.marked, trace.leaves, values);
  for (const [from, to] of digests) text = text.split(from).join(to);
  return normalised(text) === expected;
}

/** The value for `leaf` alone that makes the trace render `expected` (others as in `fixed`). */
function solveOne(trace: Trace, leaf: ProbeLeaf, fixed: ReadonlyMap<number, string>, expected: string, digests: ReadonlyMap<string, string>): string | undefined {
  const at = trace.marked.indexOf(leaf.marker);
  if (at < 0 || trace.marked.indexOf(leaf.marker, at + 1) >= 0) return undefined;
  const others = trace.leaves.filter((l) => l.id !== leaf.id);
  let before = substitute(trace.marked.slice(0, at), others, fixed);
  let after = substitute(trace.marked.slice(at + leaf.marker.length), others, fixed);
  for (const [from, to] of digests) {
    before = before.split(from).join(to);
    after = after.split(from).join(to);
  }
  if (!expected.startsWith(before) || !expected.endsWith(after) || before.length + after.length > expected.length) return undefined;
  const value = expected.slice(before.length, expected.length - after.length);
  if (value === '' && leaf.original.trim() !== '') return undefined;
  const v = new Map(fixed).set(leaf.id, value);
  return renders(trace, v, expected, digests) ? value : undefined;
}

/** Candidate value sets for one pair, best first. */
function candidates(trace: Trace, expected: string, target: Target, digests: ReadonlyMap<string, string>): Map<number, string>[] {
  const out: Map<number, string>[] = [];
  const push = (m: Map<number, string>): void => {
    if (trace.headDefaulted && !m.has(trace.leaves[0]!.id)) return;
    if (!renders(trace, m, expected, digests)) return;
    const key = JSON.stringify([...m].sort());
    if (!out.some((o) => JSON.stringify([...o].sort()) === key)) out.push(m);
  };
  const head = trace.marked.startsWith(trace.leaves[0]?.marker ?? '\u0000') ? trace.leaves[0] : undefined;
  if (head) {
    const prefix = head.original.trim() === '' ? formatTarget(target) : mappedPrefix(head.original, target);
    if (prefix !== undefined) {
      const base = new Map([[head.id, prefix]]);
      push(base);
      for (const l of trace.leaves) {
        if (l.id === head.id) continue;
        const v = solveOne(trace, l, base, expected, digests);
        if (v !== undefined) push(new Map(base).set(l.id, v));
      }
    }
  }
  for (const l of trace.leaves) {
    const v = solveOne(trace, l, new Map(), expected, digests);
    if (v !== undefined) push(new Map([[l.id, v]]));
  }
  if (head && target.prefix !== '') {
    const base = new Map([[head.id, target.registry]]);
    for (const l of trace.leaves) {
      if (l.id === head.id) continue;
      const v = solveOne(trace, l, base, expected, digests);
      if (v !== undefined) push(new Map(base).set(l.id, v));
    }
  }
  return out;
}

/** A registry or hub value mapped the way push maps the names behind it: `docker.io/istio` → R/P/istio. */
export function mappedPrefix(value: string, target: Target): string | undefined {
  const prefix = namePrefix(value);
  if (prefix === undefined) return undefined;
  const probe = parseReference(`${prefix}/airlock/probe`);
  const mapped = formatReference(targetOf(probe, target));
  return mapped.slice(0, -'/airlock/probe:latest'.length);
}

/**
 * Values for all pairs at once: each pair takes its first candidate that agrees with the values
 * set so far and does not break a pair solved before (a shared value set for a later pair would).
 * Values the probe found first in the name (registries) are settled first, so shared ones win.
 */
export function solvePairs(pairs: readonly TracedPair[], target: Target, digests: ReadonlyMap<string, string> = new Map()): Solution {
  const values = new Map<number, string>();
  const uses = new Map<string, number[]>();
  const unsolved: string[] = [];
  const solved: { pair: TracedPair; expected: string }[] = [];
  const ordered = [...pairs].sort((a, b) => b.trace.leaves.length - a.trace.leaves.length);
  for (const pair of ordered) {
    const expected = expectedOf(pair.image, target);
    if (pair.trace.leaves.length === 0) {
      unsolved.push(pair.key);
      continue;
    }
    let chosen: Map<number, string> | undefined;
    for (const c of candidates(pair.trace, expected, target, digests)) {
      if ([...c].some(([id, v]) => values.has(id) && values.get(id) !== v)) continue;
      const merged = new Map([...values, ...c]);
      if (!renders(pair.trace, merged, expected, digests)) continue;
      if (solved.some((s) => !renders(s.pair.trace, merged, s.expected, digests))) continue;
      chosen = c;
      break;
    }
    if (!chosen) {
      unsolved.push(pair.key);
      continue;
    }
    for (const [id, v] of chosen) values.set(id, v);
    uses.set(pair.key, [...chosen.keys()]);
    solved.push({ pair, expected });
  }
  return { values, uses, unsolved };
}
