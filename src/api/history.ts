// history: the record of bundles pushed and served here.
import { throwIfAborted } from '../core/errors.ts';
import { readHistory, type HistoryEntry, type HistoryRead, type HistoryRecord } from '../history/history.ts';
import type { BaseOptions } from './options.ts';

export type { HistoryEntry, HistoryRead, HistoryRecord };

export interface HistoryReadOptions extends BaseOptions {
  /** The history file (default: where push and serve record, see HistoryOptions). */
  file?: string | undefined;
}

/** Every recorded import, and each line where the hash chain shows the file was altered. */
export async function history(options: HistoryReadOptions = {}): Promise<HistoryRead> {
  throwIfAborted(options.signal);
  return await readHistory(options.file !== undefined ? { path: options.file } : {});
}
