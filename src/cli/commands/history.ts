import { ExitCode } from '../../core/errors.ts';
import { history, type HistoryEntry } from '../../api/history.ts';
import { count, table } from '../output.ts';
import { defineCommand } from './types.ts';

export const historyCommand = defineCommand({
  name: 'history',
  summary: 'list the bundles pushed and served here (the import record)',
  usage: `Usage: airlock history [--json] [--file PATH]

Every \`airlock push\` and \`airlock serve\` appends a line to the import history: when, which bundle
(its path, name, version and inventory digest, which pins every blob), the key that verified its
signature (--key) — without one, only the key the bundle claims, shown as a claim —, a delta's
base, the approvals beside it (checked with --approved-by, else shown as claimed), and where it went. The file is
$AIRLOCK_STATE/history.jsonl, else $XDG_STATE_HOME/airlock/history.jsonl, else
~/.local/state/airlock/history.jsonl. It is only appended to, and each line holds the sha256 of the
line before it: a changed, removed or reordered line is reported, and the exit code is then ${ExitCode.integrity}.

Options:
  --file PATH   read this history file instead`,
  options: { file: { type: 'string' } },
  async run({ values, out, signal }) {
    const h = await history({ file: values.file as string | undefined, signal });
    // Approvals get a column only when some import carried one.
    const approvals = h.entries.some((e) => (e.approvals ?? []).length > 0);
    const rows = [['TIME', 'ACTION', 'BUNDLE', 'VERSION', 'INVENTORY', 'SIGNED BY', ...(approvals ? ['APPROVED BY'] : []), 'TARGET']];
    for (const e of h.entries) {
      rows.push([
        e.time,
        e.action,
        e.bundle,
        `${e.name} ${e.version}${e.delta ? ` (delta of ${e.delta.version})` : ''}`,
        e.inventory.slice(0, 19),
        signerColumn(e),
        ...(approvals ? [(e.approvals ?? []).map((a) => `${a.key.slice(0, 19)}${a.verified ? '' : ' (claimed)'}`).join(', ') || '-'] : []),
        e.target,
      ]);
    }
    const broken = h.broken.map((b) => `line ${b.line}: ${b.message}`);
    out.result(
      { path: h.path, entries: h.entries, broken: h.broken },
      (h.entries.length === 0 ? `no imports recorded in ${h.path}` : `${table(rows)}\n${count(h.entries.length, 'import')} recorded in ${h.path}`) + (broken.length > 0 ? `\nWARNING: the history was altered:\n  ${broken.join('\n  ')}` : ''),
    );
    return h.broken.length > 0 ? ExitCode.integrity : ExitCode.ok;
  },
});

/** A verified signer by its key; a claim (recorded as claimedKey, or by older versions as an unverified key) as a claim. */
function signerColumn(e: HistoryEntry): string {
  if (e.verified && e.key) return `${e.key.slice(0, 19)} (verified)`;
  const claimed = e.claimedKey ?? e.key;
  return claimed ? `claims ${claimed.slice(0, 19)} (unchecked)` : '-';
}
