import { basename, resolve } from 'node:path';
import { UsageError } from '../../core/errors.ts';
import { pack } from '../../api/pack.ts';
import { readPassphrase, PASSPHRASE_ENV } from '../../sign/keys.ts';
import { count, formatBytes } from '../output.ts';
import { intFlag, registryOptions, registryUsage, sessionFrom } from './registry-flags.ts';
import { defineCommand } from './types.ts';
import { describeReferrers } from '../describe-referrers.ts';
import type { InventoryTool } from '../../bundle/format.ts';
import { PINNED_HELM } from '../../tools/pinned-helm.ts';
import { TOOL_PLATFORMS } from '../../tools/platforms.ts';

/** `linux/amd64 (airlock, helm), linux/arm64 (airlock)` */
function toolsLine(tools: readonly InventoryTool[]): string {
  const by = new Map<string, string[]>();
  for (const t of tools) by.set(t.platform, [...(by.get(t.platform) ?? []), t.name]);
  return [...by].map(([p, names]) => `${p} (${names.join(', ')})`).join(', ');
}

export const packCommand = defineCommand({
  name: 'pack',
  summary: 'download every locked image and chart and write one verifiable bundle',
  usage: `Usage: airlock pack -o BUNDLE.tar [-f airlock.yaml] [--lock] [--platform P]... [--cache DIR]
                   [--since BASE] [--split SIZE [--parity N]] [--sign NAME.key] [--no-referrers]
                   [--with-tools [--tools-platform linux/amd64,linux/arm64] [--tools-helm PATH]]

Downloads every image of airlock.lock (in parallel, verified, into a content-addressed cache that
later packs reuse and that survives an interruption) and every locked chart (as a Helm OCI artifact,
its dependencies vendored into charts/), and writes one OCI-layout tar: every blob once, the same
bytes for the same lock. Nothing is left at the output path if it fails. What the lock lists as
referring to an image (signatures, attestations, SBOMs) is carried with it, each as an entry of its
own in index.json: by its tag (repo:sha256-<hex>.sig) or by its digest.

Options:
  -o, --output FILE       the bundle to write (required)
  -f, --file FILE         the spec (default ./airlock.yaml); the lock is read from beside it
  --lock                  lock first (update airlock.lock), then pack
  --platform P            these platforms instead of the spec's platforms: (repeatable or comma-separated),
                          as \`airlock lock --platform\` locked them (with --lock: lock them now)
  --cache DIR             blob cache (default $AIRLOCK_CACHE or ~/.cache/airlock)
  --since BASE            write a delta: only the blobs BASE lacks (every manifest is carried). BASE
                          is the previous bundle (its .tar, or its volumes) or the lock it was packed
                          from. The delta names its base; verify it with \`verify --base\`, push it
                          into a registry that holds the base, serve it beside the base.
  --split SIZE            write volumes BUNDLE.tar.001, .002, … of SIZE bytes each (the last smaller)
                          for removable media: K, M, G, T or KiB, MiB, GiB, TiB (powers of 1024),
                          KB, MB, GB, TB (powers of 1000), e.g. 4GiB. \`cat BUNDLE.tar.0* > BUNDLE.tar\`
                          gives the whole bundle; every command takes the volumes as they are.
  --parity N              with --split: N recovery volumes (BUNDLE.tar.par01 …) from which
                          \`airlock repair\` rebuilds any N lost or damaged volumes (Reed–Solomon)
  --sign NAME.key         sign the inventory (it pins every blob) with a key from \`airlock keygen\`
  --passphrase-file FILE  the key's passphrase (first line); else $${PASSPHRASE_ENV}
  --no-referrers          leave out the signatures, attestations and SBOMs the lock lists (also
                          \`referrers: false\` in airlock.yaml)
  --with-tools            carry airlock itself for the other side: the executable for each tool
                          platform (and the pinned helm ${PINNED_HELM.map((p) => `${p.version} for ${p.platform}`).join(', ')}) under
                          airlock/tools/<os>-<arch>/, listed in the inventory (verify and the signature
                          cover them). Also \`tools: true\` in airlock.yaml. The executables come from
                          \`npm run build:exe\` (dist/) or $AIRLOCK_TOOLS_DIR; nothing is downloaded.
                          Take one out with: tar -xf BUNDLE.tar airlock/tools/linux-amd64/airlock
  --tools-platform P,...  the platforms to carry tools for (${TOOL_PLATFORMS.join(', ')}; comma-separated
                          or repeated; implies --with-tools). Default: the spec's tools.platforms, else
                          this machine's
  --tools-helm PATH       the pinned helm to carry (implies --with-tools; default: the first pinned one
                          of $AIRLOCK_TOOLS_DIR/helm-<os>-<arch>, $AIRLOCK_HELM, helm on PATH, .tools/bin/helm)
Packing replaces BUNDLE.tar and any volumes and recovery volumes an earlier pack left under its name.
${registryUsage}`,
  options: {
    output: { type: 'string', short: 'o' },
    file: { type: 'string', short: 'f' },
    lock: { type: 'boolean', default: false },
    platform: { type: 'string', multiple: true },
    cache: { type: 'string' },
    since: { type: 'string' },
    split: { type: 'string' },
    parity: { type: 'string' },
    sign: { type: 'string' },
    'passphrase-file': { type: 'string' },
    'with-tools': { type: 'boolean' },
    'tools-platform': { type: 'string', multiple: true },
    'tools-helm': { type: 'string' },
    'no-referrers': { type: 'boolean' },
    ...registryOptions,
  },
  async run({ values, out, signal }) {
    if (typeof values.output !== 'string') throw new UsageError('pack needs an output file: -o BUNDLE.tar');
    const passphraseFile = values['passphrase-file'] as string | undefined;
    await using session = sessionFrom(values, out);
    const started = Date.now();
    const result = await pack(values.output, {
      spec: (values.file as string | undefined) ?? 'airlock.yaml',
      relock: values.lock === true,
      platforms: values.platform as string[] | undefined,
      since: values.since as string | undefined,
      split: values.split as string | undefined,
      parity: intFlag(values.parity),
      sign: values.sign as string | undefined,
      passphrase: passphraseFile !== undefined ? await readPassphrase(passphraseFile) : undefined,
      // Left out unless given: the spec's `tools:` decides then.
      withTools: values['with-tools'] === true ? true : undefined,
      toolsPlatforms: values['tools-platform'] as string[] | undefined,
      toolsHelm: values['tools-helm'] as string | undefined,
      ...(values['no-referrers'] === true ? { referrers: false } : {}),
      session,
      signal,
      onEvent: (e) => {
        if (e.type === 'phase') {
          // One pass: "download" when anything is fetched, "write" when the cache has it all. A
          // split bundle's "write" comes after its downloads, without a total or images.
          if (e.phase === 'download' || e.phase === 'write') {
            out.begin(e.phase, e.total ?? 0);
            for (const i of e.images ?? []) out.image(i.reference, i.size);
          } else if (e.phase === 'parity') out.begin('recovery volumes', 0);
          else if (e.phase === 'base') out.info(`reading the base ${values.since as string}`);
          else out.info('locking');
        } else if (e.type === 'write-progress') out.progress(e.written, e.total);
        else if (e.type === 'warning') out.warning(e);
        else out.copy(e);
      },
    });
    const inv = result.inventory;
    const secs = (Date.now() - started) / 1000;
    const charts = result.lock.charts?.length ?? 0;
    const referrers = inv.images.filter((i) => i.referrer).length;
    const carried = inv.files ?? [];
    const images = inv.images.length - charts - referrers - carried.length;
    const lines = [
      `wrote ${result.path}: ${count(images, 'image')}, ${count(charts, 'chart')}, ${count(inv.blobs.length, 'blob')}, ${formatBytes(result.size)} (downloaded ${formatBytes(result.downloaded)}) in ${secs.toFixed(1)}s`,
    ];
    if (result.delta) {
      const d = result.delta;
      lines.push(`a delta of ${d.base.name} ${d.base.version} (inventory ${d.base.inventory}): relies on ${d.blobs} blob${d.blobs === 1 ? '' : 's'} (${formatBytes(d.bytes)}) from it`);
    }
    if (result.volumes) {
      const v = result.volumes;
      const data = result.files.slice(0, v.count).map((f) => basename(f));
      lines.push(`in ${v.count} volume${v.count === 1 ? '' : 's'} of at most ${formatBytes(v.size)}: ${data.length > 3 ? `${data[0]} … ${data.at(-1)}` : data.join(', ')}${v.parity ? `, and ${v.parity} recovery volume${v.parity === 1 ? '' : 's'}: ${result.files.slice(v.count).map((f) => basename(f)).join(', ')}` : ''}`);
    }
    if (result.cleaned.length > 0) {
      lines.push(`removed ${result.cleaned.length} temp file${result.cleaned.length === 1 ? '' : 's'} an interrupted pack had left: ${result.cleaned.map((f) => basename(f)).join(', ')}`);
    }
    if (referrers > 0) lines.push(`carries what refers to its images: ${describeReferrers(inv.images.flatMap((i) => (i.referrer ? [i.referrer] : [])))} (\`airlock inspect\` lists them)`);
    if (carried.length > 0) lines.push(`carries ${carried.length} file${carried.length === 1 ? '' : 's'}: ${carried.map((f) => f.name).join(', ')} (\`airlock extract ${basename(result.path)} --files DIR\` writes them out)`);
    if (inv.tools) lines.push(`carries ${toolsLine(inv.tools)}: extract one with \`tar -xf ${basename(result.path)} ${inv.tools[0]!.path}\``);
    if (result.signature) lines.push(`signed with ${resolve(values.sign as string)} (${result.signature.algorithm}, key ${result.signature.key})`);
    lines.push(`inventory ${result.inventoryDigest}`);
    out.result(
      {
        bundle: result.path,
        size: result.size,
        images,
        charts,
        ...(referrers > 0 ? { referrers } : {}),
        ...(carried.length > 0 ? { carriedFiles: carried.length } : {}),
        blobs: inv.blobs.length,
        downloaded: result.downloaded,
        seconds: secs,
        inventoryDigest: result.inventoryDigest,
        files: result.files,
        cleaned: result.cleaned,
        ...(result.volumes ? { volumes: result.volumes } : {}),
        ...(result.delta ? { delta: result.delta } : {}),
        ...(result.signature ? { signature: result.signature } : {}),
        ...(inv.tools ? { tools: inv.tools } : {}),
      },
      lines.join('\n'),
    );
  },
});
