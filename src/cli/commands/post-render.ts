import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import { ExitCode, NotFoundError, UsageError } from '../../core/errors.ts';
import { parseTarget } from '../../rewrite/mapping.ts';
import { postRender } from '../../api/post-render.ts';
import { digestLines } from './digest-lines.ts';
import { defineCommand } from './types.ts';

// Rendered manifests are held in memory (they are parsed as YAML documents); helm's own limit for
// a release is far below this.
const MAX_INPUT = 256 * 1024 * 1024;

async function readAll(stream: NodeJS.ReadableStream, what: string): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    const b = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += b.length;
    if (size > MAX_INPUT) throw new UsageError(`${what} is larger than ${MAX_INPUT} bytes`, { code: 'INPUT_TOO_LARGE' });
    chunks.push(b);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export const postRenderCommand = defineCommand({
  name: 'post-render',
  summary: 'map every image in rendered manifests (stdin) to your registry: helm\'s post-renderer',
  usage: `Usage: airlock post-render --registry R[/P] [--keep-host] [FILE] [--report FILE] [--strict]

Reads rendered Kubernetes manifests (multi-document YAML) on stdin, or from FILE, and writes them to
stdout with every image reference mapped to R[/P], exactly where \`airlock push BUNDLE R[/P]\` put it
(docker.io/library/nginx:1.27 -> R/P/library/nginx:1.27; tags and digests kept): pod specs of every
kind (containers, initContainers, ephemeralContainers, image volumes), custom resource image fields
(strings and {registry, repository, tag} maps), images inside container args, command and env, and
ConfigMap data; the same places \`airlock discover\` finds them. Only the references change: documents,
their order, comments, quoting and every other field come out as they went in. Images already under
R[/P] are left alone, so running it twice changes nothing more. Images it could not map are listed
on stderr (and in --report).

With helm 4 (post-renderers are plugins there):
  airlock helm-plugin install                      # once: writes the airlock-postrender plugin
  helm install NAME CHART --post-renderer airlock-postrender --post-renderer-args --registry=R[/P]
  helm template CHART --post-renderer airlock-postrender --post-renderer-args --registry=R[/P]
helm appends each --post-renderer-args value to the plugin's command. helm 4 does not show a
post-renderer's error output: add --post-renderer-args --report=/tmp/report.json, or run
\`helm template CHART ... | airlock post-render --registry R[/P]\` to see it.
Without helm: kubectl kustomize DIR | airlock post-render --registry R | kubectl apply -f -

A chart that pins an image by the digest of its upstream index (image@sha256:...) needs more when the
bundle carries that index reduced to some platforms (platforms: in airlock.yaml): give the bundle
(--bundle, or the lock it was packed from, --lock). Such a pin is then mapped to the reduced index
(R/P/path@sha256:<reduced>) unless the import history records that push stored the upstream index
in R[/P] (the registry accepted it: the pin resolves as written). With no record of that push (another
machine, or airlock serve), it is mapped: push stores the reduced index by its digest either way.

Exit codes: 0 done (also when some images could not be mapped, unless --strict); 7 with --strict, when
an image still points outside R[/P]; 2 input that is not YAML, a registry that is not R[/P].

Options:
  --registry R[/P]  the registry (and path prefix) \`airlock push\` filled
  --keep-host       push put images under their source host (R/P/quay.io/x/app): map them there
  --report FILE     write what was mapped and what was not as JSON
  --bundle FILE     the bundle pushed: map pins to upstream indexes it carries reduced (see above)
  --lock FILE       the same from the lock the bundle was packed from
  --strict          fail (exit 7, no output) when any image still points outside R[/P]
  -n, --namespace N namespace for resources that name none, in reports (default: default)`,
  options: {
    registry: { type: 'string' },
    'keep-host': { type: 'boolean' },
    report: { type: 'string' },
    bundle: { type: 'string', multiple: true },
    lock: { type: 'string', multiple: true },
    strict: { type: 'boolean', default: false },
    namespace: { type: 'string', short: 'n' },
  },
  async run({ values, positionals, out, signal }) {
    const registry = values.registry as string | undefined;
    if (registry === undefined || registry === '') {
      throw new UsageError('post-render needs --registry R[/P]: the registry `airlock push` filled', {
        hint: 'as helm\'s post-renderer: --post-renderer airlock-postrender --post-renderer-args --registry=R[/P]',
      });
    }
    // A registry that is not R[/P] fails before stdin is read.
    parseTarget(registry, { keepHost: values['keep-host'] === true });
    if (positionals.length > 1) throw new UsageError(`post-render reads one input, got ${positionals.length}: ${positionals.join(' ')}`);
    const file = positionals[0];
    let text: string;
    if (file !== undefined && file !== '-') {
      try {
        text = await readAll(createReadStream(resolve(file)), file);
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new NotFoundError(`${file} does not exist`, { code: 'INPUT_NOT_FOUND' });
        throw e;
      }
    } else {
      if (process.stdin.isTTY) {
        throw new UsageError('post-render reads rendered manifests on stdin, and stdin is a terminal', {
          hint: 'pipe them in: helm template CHART | airlock post-render --registry R[/P]',
        });
      }
      text = await readAll(process.stdin, 'stdin');
    }
    const result = await postRender(text, registry, {
      namespace: values.namespace as string | undefined,
      keepHost: values['keep-host'] === true,
      report: values.report as string | undefined,
      bundle: values.bundle as string[] | undefined,
      lock: values.lock as string[] | undefined,
      signal,
    });
    const strictFail = values.strict === true && result.remaining.length > 0;
    if (!strictFail) process.stdout.write(result.text);
    for (const w of result.warnings) out.info(`warning: ${w}`);
    for (const line of digestLines(result.digests ?? [], registry)) out.info(line);
    out.info(`post-render: ${result.changed.length} image reference(s) mapped to ${registry} in ${result.documents} document(s)`);
    for (const r of result.remaining) out.info(`not mapped: ${r.resource} ${r.path}: ${r.image}`);
    if (strictFail) {
      out.info(`--strict: ${result.remaining.length} image(s) still point outside ${registry}; nothing written`);
      return ExitCode.findings;
    }
    return ExitCode.ok;
  },
});
