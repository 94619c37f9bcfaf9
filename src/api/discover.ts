// discover: every image charts, kustomize directories and manifests need, each with why; optionally
// confirmed in its registry and added to the spec.
import { resolve } from 'node:path';
import { discoverFromSpec, discoverImages, type DiscoveredChart, type DiscoverResult } from '../discover/discover.ts';
import type { Finding, Reason } from '../discover/types.ts';
import { verifyRemote, type RemoteCheck } from '../discover/verify-remote.ts';
import { writeDiscoveredToSpec, type WriteSpecResult } from '../discover/write-spec.ts';
import { sinkOf, type DiscoverEvent } from './events.ts';
import { renderSettings, type BaseOptions, type EventOptions, type RenderOptions } from './options.ts';
import { withSession } from './session.ts';

export type { DiscoveredChart, Finding, Reason, RemoteCheck, WriteSpecResult };

export interface DiscoverOptions extends BaseOptions, EventOptions<DiscoverEvent>, RenderOptions {
  /** With no inputs: discover the local charts this spec lists, with their values (default ./airlock.yaml). */
  spec?: string | undefined;
  /** Also list images of components switched off by default, each with the values key that switches it on. */
  includeOptional?: boolean | undefined;
  /** The release name helm renders with (default `release-name`, as `helm template`). */
  releaseName?: string | undefined;
  /** Confirm each image exists in its registry (one manifest HEAD each, through the session's registry client). */
  verifyRemote?: boolean | undefined;
  /**
   * Add the new images to this spec file (created when missing), each with a comment saying why.
   * Not written when `verifyRemote` could not confirm every image.
   */
  writeSpec?: string | undefined;
}

export interface DiscoverReport extends DiscoverResult {
  /** With `verifyRemote`: each image's state in its registry. */
  remote?: RemoteCheck[];
  /** With `writeSpec`: what was added (absent when it was not written). */
  spec?: WriteSpecResult;
}

/** Render and read `inputs` (or, with none, the spec's local charts) offline and list the images they need, sorted. */
export async function discover(inputs: string | readonly string[], options: DiscoverOptions = {}): Promise<DiscoverReport> {
  const list = typeof inputs === 'string' ? [inputs] : [...inputs];
  const settings = {
    ...renderSettings(options),
    includeOptional: options.includeOptional === true,
    ...(options.releaseName !== undefined ? { releaseName: options.releaseName } : {}),
  };
  const result: DiscoverReport = list.length === 0 ? await discoverFromSpec(options.spec ?? 'airlock.yaml', settings) : await discoverImages({ ...settings, inputs: list });
  const onEvent = sinkOf(options);
  if (options.verifyRemote === true && result.images.length > 0) {
    onEvent({ type: 'phase', phase: 'verify-remote', total: result.images.length });
    result.remote = await withSession(options.session, async (session) =>
      verifyRemote(
        result.images.map((f) => f.reference),
        { open: (name) => session.repository(name), ...(options.signal ? { signal: options.signal } : {}) },
      ),
    );
  }
  if (options.writeSpec !== undefined) {
    const path = resolve(options.writeSpec);
    if (result.remote?.some((c) => c.status !== 'found')) {
      onEvent({ type: 'warning', code: 'SPEC_NOT_WRITTEN', message: `not writing ${path}: some images could not be confirmed in their registries` });
    } else {
      result.spec = await writeDiscoveredToSpec(path, result.images);
    }
  }
  return result;
}
