import { UsageError } from '../../core/errors.ts';
import { MIRRORS_FORMATS, mirrorsConfig, type MirrorsFormat } from '../../api/mirrors-config.ts';
import { defineCommand } from './types.ts';

export const mirrorsConfigCommand = defineCommand({
  name: 'mirrors-config',
  summary: 'write k3s registries.yaml or containerd hosts.toml so nodes pull original names from your registry',
  usage: `Usage: airlock mirrors-config BUNDLE... --registry R[/P] [--format k3s|containerd] [--ca-file F] [--plain-http] [--keep-host] [-o DIR|FILE]
       airlock mirrors-config --source HOST[:PORT]... --registry R ...   (no bundle: e.g. for \`airlock capture\`)

Maps every source registry of the bundle's images to R, so nodes pull images by their original
names (docker.io/library/nginx:1.27) from R: no chart change needed.
  k3s (default)  registries.yaml for k3s/RKE2 (/etc/rancher/k3s/registries.yaml), with a rewrite rule
                 when the images are under a prefix P (as \`airlock push BUNDLE R/P\` puts them).
                 Printed to stdout without -o.
  containerd     a certs.d tree: -o DIR gets DIR/<source>/hosts.toml (e.g. /etc/containerd/certs.d).
                 Under a prefix P (or with --keep-host), each host entry is R's API root for that
                 source (https://R/v2/P with override_path = true, containerd 1.6 and later).

Options:
  --registry R[/P]  the registry nodes pull from: \`airlock serve\`, or the one \`airlock push\` filled;
                    https:// unless http:// is given, --plain-http, or R is loopback without --ca-file
  --format F        k3s or containerd
  --ca-file F       CA that signed R's certificate: k3s refers to this path (give it as on the nodes);
                    containerd gets a copy beside each hosts.toml
  --plain-http      R speaks plain HTTP
  --keep-host       the images are under their source registry's host (R/P/quay.io/x/app), as
                    \`airlock push --keep-host\` puts them
  --source HOST     also mirror this registry (repeatable): with no bundle, the registries a staging
                    cluster pulls from, pointed at \`airlock capture\`
  -o, --output PATH k3s: file or directory (registries.yaml); containerd: the certs.d directory
                    (--out is the older spelling)`,
  options: {
    registry: { type: 'string' },
    format: { type: 'string' },
    'ca-file': { type: 'string' },
    'plain-http': { type: 'boolean', default: false },
    'keep-host': { type: 'boolean' },
    source: { type: 'string', multiple: true },
    output: { type: 'string', short: 'o' },
    out: { type: 'string' },
  },
  async run({ values, positionals, out, signal }) {
    const sources = (values.source as string[] | undefined) ?? [];
    if (positionals.length === 0 && sources.length === 0) throw new UsageError('mirrors-config needs a bundle or --source HOST: airlock mirrors-config BUNDLE --registry R[/P]');
    const registry = values.registry as string | undefined;
    if (registry === undefined) throw new UsageError('mirrors-config needs --registry R[/P]: the registry nodes pull from');
    const format = (values.format as string | undefined) ?? 'k3s';
    if (!MIRRORS_FORMATS.includes(format as MirrorsFormat)) throw new UsageError(`unknown format "${format}"`, { hint: `formats: ${MIRRORS_FORMATS.join(', ')}` });
    const result = await mirrorsConfig(positionals, registry, {
      format: format as MirrorsFormat,
      caFile: values['ca-file'] as string | undefined,
      plainHttp: values['plain-http'] === true,
      keepHost: values['keep-host'] === true,
      sources,
      output: (values.output ?? values.out) as string | undefined,
      signal,
    });
    const summary = `${result.sources.length} source registr${result.sources.length === 1 ? 'y' : 'ies'} (${result.sources.join(', ')}) → ${result.endpoint}${result.target.includes('/') ? ` under ${result.target.slice(result.target.indexOf('/') + 1)}/` : ''}`;
    if (result.text !== undefined) {
      out.info(summary);
      out.data({ ...result }, result.text);
      return;
    }
    out.result({ ...result }, `${result.files.map((f) => `wrote ${f}`).join('\n')}\n${summary}`);
  },
});
