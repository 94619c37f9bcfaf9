// What push and serve record in the import history. A failure to write it is told (a warning
// event), not hidden, but does not undo an import that happened.
import { appendHistory, historyPath, type HistoryRecord } from '../history/history.ts';
import type { WarningEvent } from './events.ts';

/** How a verb that imports records it: on by default, in the default file unless `historyFile` names one. */
export interface HistoryOptions {
  /** Record this import in the history (default true). */
  history?: boolean | undefined;
  /** The history file. Default: $AIRLOCK_STATE/history.jsonl, else $XDG_STATE_HOME/airlock/history.jsonl, else ~/.local/state/airlock/history.jsonl. */
  historyFile?: string | undefined;
}

export async function recordImport(records: readonly HistoryRecord[], o: HistoryOptions, warn: (e: WarningEvent) => void): Promise<void> {
  if (o.history === false) return;
  const path = o.historyFile ?? historyPath();
  for (const record of records) {
    try {
      await appendHistory(record, { path });
    } catch (e) {
      warn({ type: 'warning', code: 'HISTORY_UNWRITABLE', message: `could not record this ${record.action} in ${path}: ${(e as Error).message}` });
    }
  }
}
