import { UsageError } from '../../core/errors.ts';
import { push } from '../../api/push.ts';
import { count, formatBytes, table } from '../output.ts';
import { registryOptions, registryUsage, sessionFrom } from './registry-flags.ts';
import { defineCommand } from './types.ts';

export const pushCommand = defineCommand({
  name: 'push',
  summary: 'push every image and chart of a bundle into a registry, digests unchanged',
  usage: `Usage: airlock push BUNDLE REGISTRY[/PREFIX] [--keep-host] [--key NAME.pub] [--approved-by R.pub]... [--chunk-size SIZE]
       airlock push BUNDLE.tar.* REGISTRY[/PREFIX]   (a split bundle: its volumes, in place)

Pushes every image of the bundle: host/path:tag goes to REGISTRY/PREFIX/path:tag with the manifest
bytes untouched, so every digest (indexes included) is the same as upstream. Charts go to
REGISTRY/PREFIX/charts/NAME:VERSION, where \`helm pull oci://REGISTRY/PREFIX/charts/NAME --version VERSION\`
and \`helm install\` find them. What the bundle carries for an image (signatures, attestations, SBOMs)
goes beside it: under its cosign tag (sha256-<hex>.sig, …) or by digest with its subject; in a
registry without the OCI referrers API the referrers tag schema index (sha256-<hex>) is updated
(what it lists already is kept). Files (files: in airlock.yaml) go to REGISTRY/PREFIX/files/NAME:TAG as
OCI artifacts (\`oras pull REGISTRY/PREFIX/files/NAME:TAG\` writes the file). Blobs and manifests the
registry already has are skipped; a blob is mounted from another repository when it can be; an
interrupted push completes when run again.

A delta (pack --since) goes into a registry that already holds its base: every blob it relies on
is looked up in the target first, and if any is missing the push stops before sending anything,
naming each one. With --key, the bundle must be signed by that key (checked before anything is
sent). Each push is recorded in the import history (\`airlock history\`).

Two images that differ only by registry host (quay.io/x/app:1, docker.io/x/app:1) would land on one
name: push refuses them unless --keep-host puts each under its host (REGISTRY/PREFIX/quay.io/x/app:1,
REGISTRY/PREFIX/docker.io/x/app:1; a port as localhost_5000). serve, rewrite, post-render and
mirrors-config take the same --keep-host, so they point where push put the images.

Options:
  --key NAME.pub     refuse the bundle unless it is signed by this key
  --approved-by REVIEWER.pub
                     refuse the bundle unless this key approved it (\`airlock approve\`; repeatable:
                     every one named), checked before anything is sent
  --keep-host        keep each image's source registry host in its path (see above)
  --chunk-size SIZE  upload blobs larger than SIZE in chunks of SIZE (e.g. 8MiB), for a registry
                     or proxy that limits request bodies; without it a registry that answers 413
                     gets chunks from then on (8 MiB, halved on every further 413)
${registryUsage}`,
  options: { key: { type: 'string' }, 'approved-by': { type: 'string', multiple: true }, 'keep-host': { type: 'boolean' }, 'chunk-size': { type: 'string' }, ...registryOptions },
  async run({ values, positionals, out, signal }) {
    if (positionals.length < 2) throw new UsageError('push needs a bundle and a target: airlock push BUNDLE REGISTRY[/PREFIX]');
    const bundles = positionals.slice(0, -1);
    await using session = sessionFrom(values, out);
    const started = Date.now();
    const result = await push(bundles.length === 1 ? bundles[0]! : bundles, positionals.at(-1)!, {
      key: values.key as string | undefined,
      approvedBy: values['approved-by'] as string[] | undefined,
      keepHost: values['keep-host'] === true,
      session,
      signal,
      onEvent: (e) => {
        if (e.type === 'phase') {
          out.begin(`push to ${e.target}`, e.total);
          for (const i of e.images) out.image(i.reference, i.size);
        } else if (e.type === 'image-done') out.imageDone(e.image, `pushed ${e.target}@${e.digest.slice(0, 19)}`);
        else if (e.type === 'warning') out.warning(e);
        else out.copy(e);
      },
    });
    const secs = (Date.now() - started) / 1000;
    const rows = [['SOURCE', 'TARGET', 'DIGEST', 'UPLOADED', 'SKIPPED', 'MOUNTED']];
    for (const i of result.images) rows.push([i.source, i.target, i.digest, String(i.blobs.copied), String(i.blobs.exists), String(i.blobs.mounted)]);
    const charts = result.images.filter((i) => i.kind === 'chart');
    const referrers = result.images.filter((i) => i.kind === 'referrer').length;
    const files = result.images.filter((i) => i.kind === 'file');
    // What a user types next: the helm command that pulls each chart back out.
    const pulls = charts.map((c) => {
      const colon = c.target.lastIndexOf(':');
      return `  helm pull oci://${c.target.slice(0, colon)} --version ${c.target.slice(colon + 1).replaceAll('_', '+')}`;
    });
    const refused = result.images.filter((i) => i.index?.kept === 'reduced');
    const notes = [
      ...refused.map((i) => `${i.target}: the registry refused the upstream index ${i.index!.original} (other platforms absent); the tag holds the reduced index ${i.index!.reduced}: map pinned references with post-render/rewrite --bundle`),
      ...(result.delta ? [`a delta of ${result.delta.base.name} ${result.delta.base.version}: ${count(result.delta.relied, 'relied-on blob')} found in the registry${result.delta.mounted ? ` (${result.delta.mounted} mounted from another repository)` : ''}`] : []),
      ...(result.referrersTags ?? []).map((u) => `referrers of ${u.subject.slice(0, 19)} listed in ${u.target} (${u.entries} entr${u.entries === 1 ? 'y' : 'ies'}, ${u.added} added${u.upstream ? ': the upstream index' : ''})`),
      ...(result.signature ? [result.signature.verified ? `signed by key ${result.signature.key}, verified` : `signed, not verified (claims key ${result.signature.claimed?.key}): give --key NAME.pub to check it`] : []),
    ];
    out.result(
      { target: result.target, images: result.images, bytes: result.bytes, seconds: secs, bundle: result.bundle, ...(result.referrersTags ? { referrersTags: result.referrersTags } : {}), ...(result.delta ? { delta: result.delta } : {}), ...(result.signature ? { signature: result.signature } : {}) },
      `${table(rows)}\npushed ${count(result.images.length - charts.length - referrers - files.length, 'image')}${referrers > 0 ? ` (with ${referrers} signatures, attestations, SBOMs and other referrers)` : ''} and ${count(charts.length, 'chart')}${files.length > 0 ? ` and ${count(files.length, 'file')}` : ''} to ${result.target}: uploaded ${formatBytes(result.bytes)} in ${secs.toFixed(1)}s` +
        (pulls.length > 0 ? `\ncharts:\n${pulls.join('\n')}` : '') +
        (notes.length > 0 ? `\n${notes.join('\n')}` : ''),
    );
  },
});
