// serve: bundles as a read-only OCI registry (and containerd/k3s mirror), straight from their files.
// With a key, every bundle must be signed by it before a socket opens. Each bundle served is
// recorded in the import history.
import { resolve } from 'node:path';
import { IntegrityError, UsageError } from '../core/errors.ts';
import type { Digest } from '../core/digest.ts';
import { startServer, type AccessLogEntry } from '../serve/server.ts';
import { openBundle } from '../bundle/read.ts';
import { verifySignature } from '../bundle/sign.ts';
import { groupBundlePaths } from '../bundle/volumes.ts';
import { loadVerifyingKey, type VerifyingKey } from '../sign/keys.ts';
import { demandApprovals, loadApprovers } from '../approve/demand.ts';
import { carriedApprovals, type CarriedApproval } from '../approve/approval.ts';
import { sinkOf, type ServeEvent } from './events.ts';
import { recordImport, type HistoryOptions } from './history-record.ts';
import type { BaseOptions, EventOptions } from './options.ts';

export type { AccessLogEntry };

export interface ServeOptions extends BaseOptions, EventOptions<ServeEvent>, HistoryOptions {
  /** `[HOST]:PORT`, `PORT` or `[::1]:PORT` to listen on (default `:5000`: every address); port 0 picks a free one. */
  listen?: string | undefined;
  /** Serve HTTPS with this PEM certificate (chain) and `tlsKey`, its PEM private key. */
  tlsCert?: string | undefined;
  tlsKey?: string | undefined;
  /** Require Basic auth from this bcrypt htpasswd file. */
  htpasswd?: string | undefined;
  /** Serve images under this path prefix (as a push to REGISTRY/PREFIX places them). */
  prefix?: string | undefined;
  /**
   * Keep each image's source registry host in the path: `quay.io/x/app:1` → `R/P/quay.io/x/app:1`
   * (`localhost:5000` as `localhost_5000`), so images that differ only by host do not collide.
   * Whatever pushes, serves, rewrites, post-renders and writes mirror configs must agree on it.
   */
  keepHost?: boolean | undefined;
  /** Serve only bundles signed by this public key (a NAME.pub), checked before listening. */
  key?: string | undefined;
  /** Serve only bundles each of these public keys (REVIEWER.pub) approved (`airlock approve`), checked before listening. */
  approvedBy?: string | readonly string[] | undefined;
}

/** A tool the bundles carry, offered for download at `url` (pack --with-tools). */
export interface ServedTool {
  platform: string;
  name: string;
  size: number;
  digest: Digest;
  /** Absolute: the server's URL and `/tools/<os>-<arch>/<name>`. */
  url: string;
}

/** A file the bundles carry (`files:`), offered for download at `url`. */
export interface ServedFile {
  name: string;
  size: number;
  digest: Digest;
  /** `0755` */
  mode: string;
  /** Absolute: the server's URL and `/files/<name>` (percent-encoded). */
  url: string;
}

export interface ServedImage {
  /** The image's original reference. */
  image: string;
  /** Where it is served: `[PREFIX/]path:tag`. */
  served: string;
  digest: Digest;
}

/** A running registry. Stops on close() (or when the signal fires): requests in flight finish first. */
export interface Server extends AsyncDisposable {
  /** e.g. `http://127.0.0.1:5000`. */
  url: string;
  /** The address and port bound. */
  address: string;
  port: number;
  tls: boolean;
  /** Basic auth is required. */
  auth: boolean;
  /** The bundles served (each a file, or a split bundle's shared name), in the order given: a later one wins a tag several carry. */
  bundles: string[];
  images: ServedImage[];
  /** Tools the bundles carry, offered at GET /tools/<os>-<arch>/<name> (a list at GET /tools/). */
  tools: ServedTool[];
  /** Files the bundles carry, offered at GET /files/<name> (a list at GET /files/). */
  files: ServedFile[];
  /** Requests answered so far. */
  readonly requests: number;
  /** Stop listening, let requests in flight finish (up to 10 s), close the bundles. Idempotent. */
  close(): Promise<void>;
}

/**
 * Serve bundles (files, or split bundles' volumes; a base and its updates are served as one).
 * Resolves once listening.
 */
export async function serve(bundles: string | readonly string[], options: ServeOptions = {}): Promise<Server> {
  const paths = (typeof bundles === 'string' ? [bundles] : bundles).map((p) => resolve(p));
  if (paths.length === 0) throw new UsageError('serve needs at least one bundle');
  const key = options.key !== undefined ? await loadVerifyingKey(options.key) : undefined;
  if (key) await checkSigned(paths, key, options.signal);
  const approvers = await loadApprovers(options.approvedBy);
  // By inventory digest: the record below names each bundle served by it.
  const approved = new Map<string, CarriedApproval[]>();
  if (approvers.length > 0) {
    for (const files of await groupBundlePaths(paths)) {
      const a = await demandApprovals(files, approvers, options.signal);
      approved.set(a.inventory, a.carried);
    }
  }
  const onEvent = sinkOf(options);
  let requests = 0;
  const srv = await startServer({
    bundles: paths,
    listen: options.listen,
    tlsCert: options.tlsCert,
    tlsKey: options.tlsKey,
    htpasswd: options.htpasswd,
    prefix: options.prefix,
    keepHost: options.keepHost,
    signal: options.signal,
    onAccess: (e) => {
      requests++;
      onEvent({ type: 'access', ...e });
    },
    onBlobCheck: (e) => {
      onEvent(e);
      if (!e.ok) {
        onEvent({
          type: 'warning',
          code: 'BLOB_DAMAGED',
          message: `${e.error ?? `blob ${e.digest} in ${e.bundle} does not match its digest`}; it is no longer served (the bundle was damaged or changed after packing: \`airlock verify ${e.bundle}\` lists every bad blob)`,
        });
      }
    },
  });
  try {
    const carried = async (path: string, inventory: string): Promise<CarriedApproval[]> => {
      if (approvers.length > 0) {
        const a = approved.get(inventory);
        // A bundle that changed between the check and the server opening it is not served.
        if (!a) throw new IntegrityError(`${path} changed after its approvals were checked (its inventory is now ${inventory})`, { code: 'APPROVAL_INVALID', hint: 'serve it again' });
        return a;
      }
      return await carriedApprovals(path, inventory, []).catch((e: unknown) => {
        onEvent({ type: 'warning', code: 'APPROVALS_UNREADABLE', message: `the approvals beside ${path} were not recorded: ${(e as Error).message}` });
        return [];
      });
    };
    const approvalsOf = new Map<string, CarriedApproval[]>();
    for (const b of srv.set.bundles) approvalsOf.set(b.path, await carried(b.path, b.inventoryDigest));
    await recordImport(
      srv.set.bundles.map((b) => ({
        action: 'serve' as const,
        bundle: b.path,
        name: b.bundleInfo.name,
        version: b.bundleInfo.version,
        inventory: b.inventoryDigest,
        // With a key every bundle was verified by it (checkSigned): the signer is that key, never
        // the one a bundle names; without, what a bundle names is recorded as a claim.
        key: key ? key.fingerprint : null,
        verified: key !== undefined,
        claimedKey: key ? undefined : b.signature?.info.key,
        delta: b.inventory.delta?.base,
        target: srv.url,
        images: b.images().length,
        ...(approvalsOf.get(b.path)!.length > 0 ? { approvals: approvalsOf.get(b.path) } : {}),
      })),
      options,
      onEvent,
    );
  } catch (e) {
    await srv.close();
    throw e;
  }
  return {
    url: srv.url,
    address: srv.address,
    port: srv.port,
    tls: srv.tls,
    auth: options.htpasswd !== undefined,
    bundles: srv.set.bundles.map((b) => b.path),
    images: srv.set.images.map((i) => ({ image: i.name, served: srv.catalog.servedName(i), digest: i.root.digest as Digest })),
    tools: srv.set.tools().map(({ tool: t }) => ({ platform: t.platform, name: t.name, size: t.size, digest: t.digest, url: `${srv.url}/tools/${t.platform.replace('/', '-')}/${t.name}` })),
    files: srv.set.files().map(({ file: f }) => ({ name: f.name, size: f.size, digest: f.digest, mode: f.mode, url: `${srv.url}/files/${encodeURIComponent(f.name)}` })),
    get requests() {
      return requests;
    },
    close: () => srv.close(),
    [Symbol.asyncDispose]: () => srv.close(),
  };
}

/** Every bundle must carry a signature by `key`: an unsigned or foreign bundle is never served. */
async function checkSigned(paths: readonly string[], key: VerifyingKey, signal: AbortSignal | undefined): Promise<void> {
  for (const files of await groupBundlePaths(paths)) {
    const b = await openBundle(files, { signal });
    try {
      verifySignature(b, key);
    } finally {
      await b.close();
    }
  }
}
