// Render a chart again with its switches on (impure: runs helm), so optional images come out
// exactly as the chart composes them. All switches at once first; when helm refuses (two modes
// that exclude each other, a switch that needs a value nobody set), the switches are split in
// halves and tried again, within a small budget of renders. Switches that still fail are reported.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AirlockError, throwIfAborted } from '../core/errors.ts';
import { helmFailureReason, renderChartWith, type ChartRenderOptions } from './sources.ts';
import { switchOverlay, type Switch } from './switches.ts';
import type { Manifest } from './types.ts';

export interface SwitchedRender {
  manifests: Manifest[];
  /** The switches that were on in this render. */
  on: Switch[];
}

export interface SwitchedResult {
  renders: SwitchedRender[];
  /** Switches helm would not render even alone (or left over when the budget ran out), with helm's reason. */
  failed: { switch: Switch; reason: string }[];
}

const DEFAULT_BUDGET = 12;

/** Render `chart` with `switches` on; `budget` bounds the number of helm runs. */
export async function renderWithSwitches(chart: string, o: ChartRenderOptions, switches: readonly Switch[], budget = DEFAULT_BUDGET): Promise<SwitchedResult> {
  const result: SwitchedResult = { renders: [], failed: [] };
  if (switches.length === 0) return result;
  const dir = await mkdtemp(join(tmpdir(), 'airlock-switches-'));
  let runs = 0;
  let file = 0;
  try {
    const attempt = async (group: Switch[]): Promise<void> => {
      throwIfAborted(o.signal);
      runs++;
      const overlay = join(dir, `on-${file++}.yaml`);
      await writeFile(overlay, `${JSON.stringify(switchOverlay(group))}\n`);
      try {
        result.renders.push({ manifests: await renderChartWith(chart, o, [overlay]), on: group });
        return;
      } catch (e) {
        if (!(e instanceof AirlockError) || e.code !== 'HELM_FAILED' || o.signal?.aborted) throw e;
        if (group.length === 1 || runs + 2 > budget) {
          const reason = helmFailureReason(e);
          for (const s of group) result.failed.push({ switch: s, reason });
          return;
        }
      }
      const half = Math.ceil(group.length / 2);
      // two at a time: the machine's cores, not one helm per switch
      await Promise.all([attempt(group.slice(0, half)), attempt(group.slice(half))]);
    };
    await attempt([...switches]);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  return result;
}
