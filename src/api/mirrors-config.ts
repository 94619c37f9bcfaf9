// mirrorsConfig: node configuration (k3s registries.yaml, containerd hosts.toml) that sends pulls of
// the bundle's original image names to your registry.
import { resolve } from 'node:path';
import { throwIfAborted } from '../core/errors.ts';
import { MIRRORS_FORMATS, mirrorsConfig as writeMirrors, type MirrorsConfigResult, type MirrorsFormat } from '../rewrite/mirrors.ts';
import type { BaseOptions } from './options.ts';

export { MIRRORS_FORMATS };
export type { MirrorsConfigResult, MirrorsFormat };

export interface MirrorsConfigOptions extends BaseOptions {
  /** k3s (default): registries.yaml; containerd: a certs.d tree of hosts.toml files (needs `output`). */
  format?: MirrorsFormat | undefined;
  /** The CA that signed the registry's certificate, as the nodes see it (k3s refers to it; containerd gets a copy). */
  caFile?: string | undefined;
  /** The registry speaks plain HTTP. */
  plainHttp?: boolean | undefined;
  /** The images are under their source host in the registry (`R/P/<host>/<path>`, as `push` with `keepHost` puts them). */
  keepHost?: boolean | undefined;
  /**
   * Source registries (HOST[:PORT]) to mirror besides the bundles' (with no bundle, only these):
   * e.g. the upstreams `airlock capture` relays for.
   */
  sources?: readonly string[] | undefined;
  /** k3s: a file or a directory for registries.yaml (left out: the text is returned); containerd: the certs.d directory. */
  output?: string | undefined;
}

/**
 * Map every source registry of the bundles' images to `registry` (`R[/PREFIX]`, https:// unless
 * http:// or `plainHttp`, or a loopback R without `caFile`), so nodes pull images by their original
 * names from it.
 */
export async function mirrorsConfig(bundles: string | readonly string[], registry: string, options: MirrorsConfigOptions = {}): Promise<MirrorsConfigResult> {
  throwIfAborted(options.signal);
  return await writeMirrors({
    bundles: (typeof bundles === 'string' ? [bundles] : bundles).map((p) => resolve(p)),
    registry,
    format: options.format ?? 'k3s',
    caFile: options.caFile,
    plainHttp: options.plainHttp === true,
    keepHost: options.keepHost === true,
    sources: options.sources,
    out: options.output,
  });
}
