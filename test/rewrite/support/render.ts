// What the rewrite tests share: helm template with the pinned helm, the image places of a render,
// and where push puts an image under a target.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { formatReference, parseReference } from '../../../src/core/reference.ts';
import { parseManifestStream } from '../../../src/discover/sources.ts';
import { locateImages } from '../../../src/rewrite/locate.ts';
import { mapAll, type Target } from '../../../src/rewrite/mapping.ts';
import { helmPath } from '../../helpers/helm.ts';

export const HELM = helmPath();

/** Run a program to its end (killed after 60 s), with `env` over this process's environment. */
export function run(cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<{ code: number; stdout: string; stderr: string }> {
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
  child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  return new Promise((resolve) =>
    child.on('close', (code, sig) => {
      clearTimeout(timer);
      resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr });
    }),
  );
}

/** `helm template CHART ...extra`, which must succeed: its output. */
export async function render(chart: string, extra: string[] = [], env: NodeJS.ProcessEnv = {}): Promise<string> {
  const r = await run(HELM, ['template', chart, ...extra], env);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
}

/** Every image place of a render (`<resource> <path>`) with the references it names. */
export function places(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const m of parseManifestStream(text, 'test')) for (const l of locateImages(m.object).locations) out.set(`${l.resource} ${l.path}`, l.references);
  return out;
}

/** Where `airlock push` puts `ref` under `target`. */
export function pushedUnder(target: Target): (ref: string) => string {
  return (ref) => formatReference(mapAll([parseReference(ref)], target).get(formatReference(parseReference(ref)))!);
}
