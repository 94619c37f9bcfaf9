import { existsSync } from 'node:fs';
import { UsageError } from '../../core/errors.ts';
import { exportImages, type ExportFormat } from '../../api/export.ts';
import { formatBytes, table } from '../output.ts';
import { defineCommand } from './types.ts';

export const exportCommand = defineCommand({
  name: 'export',
  summary: 'write a bundle\'s images as tarballs that k3s/RKE2 and `ctr images import` load',
  usage: `Usage: airlock export k3s|containerd BUNDLE... DIR [--single]
       airlock export k3s|containerd BUNDLE... -o DIR [--single]
       airlock export BUNDLE... DIR --format k3s|containerd [--single]

Writes OCI-archive tarballs into DIR, one per image (named from its reference) or one for all with
--single. Each names its images by their full original references, and every digest is kept.
  k3s/RKE2:   put them in /var/lib/rancher/k3s/agent/images/ (RKE2: /var/lib/rancher/rke2/agent/images/);
              they are imported when the node starts.
  containerd: ctr -n k8s.io images import --all-platforms FILE
An image whose index the bundle carries reduced to some platforms (platforms: in airlock.yaml) is
named by its upstream index, so it keeps the upstream digest; import such files without
--all-platforms (the other platforms' content is not carried).

Options:
  -o, --output DIR  the folder to write into (or give it as the last argument)
  --format F   k3s (default) or containerd: the same files, the hint differs
  --single     one tarball with every image`,
  options: {
    output: { type: 'string', short: 'o' },
    format: { type: 'string' },
    single: { type: 'boolean', default: false },
  },
  async run({ values, positionals, out, signal }) {
    let args = positionals;
    let format = values.format as string | undefined;
    const first = args[0];
    if (first !== undefined && args.length >= (typeof values.output === 'string' ? 1 : 2) && /^[a-z0-9]+$/.test(first) && !existsSync(first)) {
      // `export FORMAT BUNDLE DIR`: a word that is not a file is the format.
      if (format !== undefined && format !== first) throw new UsageError(`export ${first} contradicts --format ${format}`);
      format = first;
      args = args.slice(1);
    }
    if (typeof values.output === 'string') args = [...args, values.output];
    if (args.length < 2) throw new UsageError('export needs a bundle and a directory: airlock export k3s BUNDLE DIR');
    let done = 0;
    let total = 0;
    const started = Date.now();
    const result = await exportImages(args.slice(0, -1), args[args.length - 1]!, {
      format: (format ?? 'k3s') as ExportFormat,
      single: values.single === true,
      signal,
      onEvent: (e) => {
        if (e.type === 'start') {
          total = e.bytes;
          out.begin(`export ${e.files} file${e.files === 1 ? '' : 's'}`, e.bytes);
        } else if (e.type === 'bytes') {
          done += e.bytes;
          out.progress(done, total);
        } else out.imageDone(e.file, `wrote ${e.file} (${formatBytes(e.size)})`);
      },
    });
    const secs = (Date.now() - started) / 1000;
    const rows = [['FILE', 'SIZE', 'IMAGES']];
    for (const f of result.files) rows.push([f.path, formatBytes(f.size), f.images.join(', ')]);
    const next =
      result.format === 'k3s'
        ? `copy them to /var/lib/rancher/k3s/agent/images/ (RKE2: /var/lib/rancher/rke2/agent/images/) on every node; they are imported at start`
        : result.partial.length > 0
          ? 'import each on every node: ctr -n k8s.io images import FILE (the node\'s platform; --platform P for another)'
          : `import each on every node: ctr -n k8s.io images import --all-platforms FILE`;
    // Their upstream index lists platforms the bundle does not carry: --all-platforms would look for them.
    const partial = result.partial.length > 0 ? `\n${result.partial.length} image${result.partial.length === 1 ? ' keeps its' : 's keep their'} upstream index digest but carr${result.partial.length === 1 ? 'ies' : 'y'} only the bundle's platforms: ${result.partial.join(', ')}; \`ctr images import --all-platforms\` refuses ${result.partial.length === 1 ? 'it' : 'them'} (the other platforms' content is absent)` : '';
    const skipped = result.skipped.length > 0 ? `\nleft out ${result.skipped.length} artifact${result.skipped.length === 1 ? '' : 's'} that are not container images (charts, SBOMs, signatures): ${result.skipped.join(', ')}` : '';
    out.result(
      { dir: result.dir, format: result.format, files: result.files, skipped: result.skipped, partial: result.partial, seconds: secs },
      `${table(rows)}${skipped}${partial}\nwrote ${result.files.length} file${result.files.length === 1 ? '' : 's'} to ${result.dir} in ${secs.toFixed(1)}s\n${next}`,
    );
  },
});
