// The rendered objects of charts, kustomize directories and manifest files, read through the
// pipeline `airlock discover` uses (discover/sources.ts), tolerant: a manifest document that does
// not parse is a problem to report, not a reason to stop; the audit of everything else goes on.
import { join } from 'node:path';
import { loadInputs, type LoadProblem, type RenderInputOptions } from '../discover/sources.ts';
import type { Manifest } from '../discover/types.ts';

export type { LoadProblem, RenderInputOptions };

export interface LoadedManifests {
  manifests: Manifest[];
  problems: LoadProblem[];
  warnings: string[];
}

/** Render and read every input; unparseable manifest documents come back as problems. */
export async function loadManifests(o: RenderInputOptions, command: string): Promise<LoadedManifests> {
  const loaded = await loadInputs({ ...o, command, tolerant: true });
  const out: LoadedManifests = { manifests: [], problems: loaded.problems, warnings: [] };
  for (const input of loaded.inputs) {
    out.warnings.push(...input.warnings);
    // helm names templates `CHARTNAME/templates/x.yaml`: make that a path the user can open.
    const fromDir = input.kind === 'chart' && !/\.t(ar\.)?gz$/i.test(input.path);
    out.manifests.push(...input.manifests.map((m) => (m.origin && fromDir && m.origin.includes('/') ? { ...m, origin: join(input.label, m.origin.slice(m.origin.indexOf('/') + 1)) } : m)));
  }
  out.warnings = [...new Set(out.warnings)];
  return out;
}
