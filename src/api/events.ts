// What the library tells its caller while it works: progress, and warnings that do not stop it.
// Each verb takes `onEvent` for its own events; without one they go to the session's sink.
import type { AccessLogEntry } from '../serve/server.ts';
import type { BlobCheckEvent } from '../serve/bundle-set.ts';
import type { CopyEvent } from '../copy.ts';
import type { ExportEvent } from '../export/export.ts';
import type { PackEvent } from '../pack/pack.ts';
import type { Session } from './session.ts';

export type { BlobCheckEvent, CopyEvent, ExportEvent, PackEvent };

/** Something went wrong that does not undo the work (e.g. the import history could not be written). */
export interface WarningEvent {
  type: 'warning';
  /** Stable, machine-readable, like an error's code (e.g. `HISTORY_UNWRITABLE`). */
  code: string;
  message: string;
}

/** Bytes hashed of the total: verify (volumes first for a split bundle, then blobs) and repair. */
export interface ProgressEvent {
  type: 'progress';
  done: number;
  total: number;
  phase?: 'volumes' | 'blobs' | 'repair';
}

/** push: what is about to be sent (before the first byte). */
export interface PushStartEvent {
  type: 'phase';
  phase: 'push';
  /** `REGISTRY[/PREFIX]`. */
  target: string;
  /** Bytes of every blob the bundle carries. */
  total: number;
  images: { reference: string; size: number }[];
}

/** push: one image (or chart) is in the target, under its digest. */
export interface ImageDoneEvent {
  type: 'image-done';
  image: string;
  target: string;
  digest: string;
}

export type PushEvent = PushStartEvent | CopyEvent | ImageDoneEvent | WarningEvent;

/** serve: one request answered. */
export interface AccessEvent extends AccessLogEntry {
  type: 'access';
}

/** serve: a blob checked against its digest (once per blob), and a warning when it failed (no longer served). */
export type ServeEvent = AccessEvent | BlobCheckEvent | WarningEvent;

/** discover: the images about to be looked up in their registries (verifyRemote). */
export interface RemoteCheckEvent {
  type: 'phase';
  phase: 'verify-remote';
  /** Images to look up. */
  total: number;
}

export type DiscoverEvent = RemoteCheckEvent | WarningEvent;
export type VerifyEvent = ProgressEvent;

/** Every event any verb emits: what a session's sink receives. */
export type AirlockEvent = PackEvent | PushEvent | ExportEvent | ServeEvent | DiscoverEvent | ProgressEvent | WarningEvent;

/** The sink a verb reports to: its own `onEvent`, else its session's, else nowhere. */
export function sinkOf<E extends AirlockEvent>(o: { onEvent?: ((e: E) => void) | undefined; session?: Session | undefined }): (e: E) => void {
  return o.onEvent ?? o.session?.onEvent ?? (() => {});
}
