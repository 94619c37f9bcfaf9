// push: every image and chart of a bundle into a registry, digests unchanged; recorded in the
// import history.
import { resolve } from 'node:path';
import { pushBundle, type PushedImage, type PushResult } from '../push/push.ts';
import { formatTarget, parseTarget } from '../rewrite/mapping.ts';
import { loadVerifyingKey } from '../sign/keys.ts';
import { demandApprovals, loadApprovers } from '../approve/demand.ts';
import { carriedApprovals } from '../approve/approval.ts';
import { IntegrityError } from '../core/errors.ts';
import { locateBundle } from '../bundle/volumes.ts';
import { sinkOf, type PushEvent } from './events.ts';
import { recordImport, type HistoryOptions } from './history-record.ts';
import type { PushedIndex } from '../history/history.ts';
import type { BaseOptions, EventOptions } from './options.ts';
import { withSession } from './session.ts';

export type { PushedImage };

export interface PushOptions extends BaseOptions, EventOptions<PushEvent>, HistoryOptions {
  /** Refuse the bundle (before sending anything) unless it is signed by this public key (a NAME.pub). */
  key?: string | undefined;
  /**
   * Keep each image's source registry host in the path: `quay.io/x/app:1` → `R/P/quay.io/x/app:1`
   * (`localhost:5000` as `localhost_5000`), so images that differ only by host do not collide.
   * Whatever pushes, serves, rewrites, post-renders and writes mirror configs must agree on it.
   */
  keepHost?: boolean | undefined;
  /** Refuse the bundle (before sending anything) unless each of these public keys (REVIEWER.pub) approved it (`airlock approve`). */
  approvedBy?: string | readonly string[] | undefined;
}

export interface PushReport extends PushResult {
  /** `REGISTRY[/PREFIX]` as pushed to. */
  target: string;
}

/**
 * Push a bundle (its file, or a split bundle's volumes) into `target` (`REGISTRY[/PREFIX]`):
 * host/path:tag goes to REGISTRY/PREFIX/path:tag with the manifest bytes untouched, charts to
 * REGISTRY/PREFIX/charts/NAME:VERSION. What the registry has is skipped; a rerun completes an
 * interrupted push. A delta goes only into a registry that holds every blob it relies on.
 */
export async function push(bundle: string | readonly string[], target: string, options: PushOptions = {}): Promise<PushReport> {
  const bundlePath = typeof bundle === 'string' ? resolve(bundle) : bundle.map((p) => resolve(p));
  const to = parseTarget(target, { keepHost: options.keepHost });
  const key = options.key !== undefined ? await loadVerifyingKey(options.key) : undefined;
  const approvers = await loadApprovers(options.approvedBy);
  // Approvals are checked before a session opens or a byte is sent; the bundle push then opens must be the one approved.
  const approvals = approvers.length > 0 ? await demandApprovals(await locateBundle(bundlePath), approvers, options.signal) : undefined;
  const onEvent = sinkOf(options);
  return await withSession(options.session, async (session) => {
    const result = await pushBundle({
      bundlePath,
      key,
      target: to,
      open: (ref) => session.repository(ref),
      concurrency: session.concurrency,
      signal: options.signal,
      onEvent,
      // Announced from the bundle push opened and checked: its own errors (a missing blob, a
      // signature) name more than a first look at the metadata would.
      onChecked: (b) => {
        if (approvals && b.inventoryDigest !== approvals.inventory) {
          throw new IntegrityError(`${b.path} changed while it was being pushed: its inventory is ${b.inventoryDigest}, the approvals were checked for ${approvals.inventory}`, { code: 'APPROVAL_INVALID', hint: 'nothing was pushed; push it again' });
        }
        onEvent({ type: 'phase', phase: 'push', target: formatTarget(to), total: b.inventory.totals.bytes, images: b.inventory.images.filter((i) => i.referrer?.kind !== 'referrers-index').map((i) => ({ reference: i.reference, size: i.totalSize })) });
      },
    });
    // Not demanded: what sits beside the bundle is recorded as claims; unreadable, it is told, not fatal (the push happened).
    const carried =
      approvals?.carried ??
      (await carriedApprovals(result.bundle.path, result.bundle.inventory, []).catch((e: unknown) => {
        onEvent({ type: 'warning', code: 'APPROVALS_UNREADABLE', message: `the approvals beside ${result.bundle.path} were not recorded: ${(e as Error).message}` });
        return [];
      }));
    await recordImport(
      [
        {
          action: 'push',
          bundle: result.bundle.path,
          name: result.bundle.name,
          version: result.bundle.version,
          inventory: result.bundle.inventory,
          key: result.signature?.verified ? result.signature.key! : null,
          verified: result.signature?.verified === true,
          claimedKey: result.signature && !result.signature.verified ? result.signature.claimed?.key : undefined,
          delta: result.delta?.base,
          target: formatTarget(to),
          ...(to.keepHost === true ? { keepHost: true as const } : {}),
          images: result.images.length,
          indexes: pushedIndexes(result.images),
          ...(carried.length > 0 ? { approvals: carried } : {}),
        },
      ],
      options,
      onEvent,
    );
    return { ...result, target: formatTarget(to) };
  });
}

/** What post-render and rewrite need to know later: which index each reduced image's tag holds. */
function pushedIndexes(images: readonly PushedImage[]): PushedIndex[] | undefined {
  const out = images.filter((i) => i.index).map((i) => ({ image: i.source, target: i.target, original: i.index!.original, reduced: i.index!.reduced, kept: i.index!.kept }));
  return out.length > 0 ? out : undefined;
}
