import { basename } from 'node:path';
import { ExitCode, UsageError } from '../../core/errors.ts';
import { repair } from '../../api/repair.ts';
import { defineCommand } from './types.ts';

export const repairCommand = defineCommand({
  name: 'repair',
  summary: 'rebuild lost or damaged volumes of a split bundle from its recovery volumes',
  usage: `Usage: airlock repair BUNDLE.tar.*      (or BUNDLE.tar, or any one of its volumes)

Checks every volume and recovery volume (BUNDLE.tar.parNN, written by pack --split S --parity N)
and rebuilds, byte for byte, every volume that is missing, truncated or damaged — up to as many as
there are usable recovery volumes — and then every missing or damaged recovery volume. Each rebuilt
file must match the checksum the bundle records for it before it replaces anything (temp file,
fsync, rename). Run \`airlock verify\` first to see what is lost.`,
  options: {},
  async run({ positionals, out, signal }) {
    if (positionals.length === 0) throw new UsageError('repair needs a split bundle: airlock repair BUNDLE.tar.*');
    out.begin('repair', 0);
    const r = await repair(positionals.length === 1 ? positionals[0]! : positionals, { signal, onEvent: (p) => out.progress(p.done, p.total) });
    const restored = [...r.restored, ...r.parityRestored];
    const strays = r.before.files.filter((f) => f.state === 'stray');
    out.result(
      { bundle: r.base, restored: r.restored, parityRestored: r.parityRestored, cleaned: r.cleaned, before: r.before },
      (restored.length === 0
        ? `${r.base}: every volume and recovery volume is intact; nothing to repair`
        : `${r.base}: rebuilt ${restored.map((f) => basename(f)).join(', ')}; every volume now matches its checksum`) +
        (strays.length > 0 ? `\nleft alone: ${strays.map((f) => f.message).join('; ')}` : '') +
        (r.cleaned.length > 0 ? `\nremoved ${r.cleaned.length} temp file${r.cleaned.length === 1 ? '' : 's'} an interrupted run had left: ${r.cleaned.map((f) => basename(f)).join(', ')}` : ''),
    );
    return ExitCode.ok;
  },
});
