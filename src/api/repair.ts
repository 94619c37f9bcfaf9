// repair: rebuild lost or damaged volumes of a split bundle from its recovery volumes.
import { resolve } from 'node:path';
import { repairBundle, type RepairResult } from '../bundle/repair.ts';
import { sinkOf, type ProgressEvent } from './events.ts';
import type { BaseOptions, EventOptions } from './options.ts';

export type { RepairResult };

export interface RepairOptions extends BaseOptions, EventOptions<ProgressEvent> {}

/**
 * Check every volume and recovery volume, and rebuild byte for byte each one that is missing,
 * truncated or damaged (up to as many as there are usable recovery volumes). A rebuilt file must
 * match the checksum the bundle records before it replaces anything.
 */
export async function repair(bundle: string | readonly string[], options: RepairOptions = {}): Promise<RepairResult> {
  const onEvent = sinkOf(options);
  return await repairBundle(typeof bundle === 'string' ? resolve(bundle) : bundle.map((p) => resolve(p)), {
    signal: options.signal,
    onProgress: (p) => onEvent({ type: 'progress', done: p.done, total: p.total, phase: 'volumes' }),
    onRepairProgress: (p) => onEvent({ type: 'progress', done: p.done, total: p.total, phase: 'repair' }),
  });
}
