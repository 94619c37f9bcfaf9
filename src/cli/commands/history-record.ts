// What push and serve record in the import history: a failure to write it is told, not hidden,
// but does not undo an import that happened.
import { appendHistory, historyPath, type HistoryRecord } from '../../history/history.ts';
import type { Output } from '../output.ts';

export async function recordImport(out: Output, record: HistoryRecord): Promise<void> {
  try {
    await appendHistory(record);
  } catch (e) {
    process.stderr.write(`airlock: warning: could not record this ${record.action} in ${historyPath()}: ${(e as Error).message}\n`);
    out.event({ type: 'warning', code: 'HISTORY_UNWRITABLE', message: (e as Error).message });
  }
}
