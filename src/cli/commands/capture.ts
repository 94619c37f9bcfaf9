import { ExitCode, UsageError } from '../../core/errors.ts';
import { capture, readCapture, type CaptureReport, type PullRecord } from '../../api/capture.ts';
import { registryOptions, registryUsage, sessionFrom } from './registry-flags.ts';
import { defineCommand } from './types.ts';
import { count, type Output } from '../output.ts';

export const captureCommand = defineCommand({
  name: 'capture',
  summary: 'a pull-through mirror for a staging cluster that records what its nodes pull, and writes it into the spec',
  usage: `Usage: airlock capture --listen ADDR [--write airlock.yaml] [--record capture.jsonl] [--compare discover.json]
                       [--upstream REGISTRY] [--tls-cert FILE --tls-key FILE]
       airlock capture --record capture.jsonl [--write airlock.yaml] [--compare discover.json]   (read a record back)

A read-only registry mirror for the nodes of a connected staging cluster: deploy there, and every
manifest and blob its nodes pull is fetched from the registry they meant, checked against its digest
while it streams to them, and recorded. Point the nodes at it with
  airlock mirrors-config --source docker.io --source quay.io --registry HOST:PORT --format containerd -o /etc/containerd/certs.d
(or --format k3s): pods keep their original image names; containerd and k3s say which registry they
meant (?ns=). Requests that do not (Docker's registry-mirrors, a skopeo/podman mirror) go to --upstream.

Nothing is passed on unchecked: a manifest is checked before it is sent; a blob streams while it is
hashed and its last bytes wait for the check, so bytes that do not match their digest reach the node
cut short (never complete) and are recorded as refused. Ranges get the whole blob. Pushes are refused (405).

Stops on SIGINT/SIGTERM: no new connections, pulls in flight finish (up to 30 s), the record is
flushed, then the spec is written and the summary printed: the images pulled (pinned by the digest
served; for an index, the platforms pulled from it), the upstream registries the nodes asked for,
anything refused, and with --compare what discovery missed and what no node pulled.

Options:
  --listen ADDR       [HOST]:PORT to listen on (port 0: any free one)
  --upstream R        the registry of requests without ?ns= (default docker.io)
  --write FILE        on stop, add every image pulled to this spec, pinned (your entries and comments stay)
  --record FILE       append the raw record here: one NDJSON line per manifest or blob answered
                      (registry, repository, tag or digest asked for, digest answered, media type,
                      size, platform chosen, client, time, outcome); without --listen: read it back
  --compare FILE      \`airlock discover --json\` output (or its plain list): images pulled that it did
                      not predict, and images it predicted that no node pulled
  --tls-cert FILE     serve HTTPS with this PEM certificate (chain) ...
  --tls-key FILE      ... and its PEM private key
With --json every record is an event on stdout as it happens, then the result.
${registryUsage}`,
  options: {
    listen: { type: 'string' },
    upstream: { type: 'string' },
    write: { type: 'string' },
    record: { type: 'string' },
    compare: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    ...registryOptions,
  },
  async run({ values, positionals, out, signal }) {
    if (positionals.length > 0) throw new UsageError(`capture takes no arguments, got ${positionals.join(' ')}`, { hint: 'airlock capture --listen :5000 --write airlock.yaml' });
    const write = values.write as string | undefined;
    const record = values.record as string | undefined;
    const compare = values.compare as string | undefined;
    const listen = values.listen as string | undefined;
    if (listen === undefined) {
      if (record === undefined) throw new UsageError('capture needs --listen ADDR (or --record FILE to read a record back)', { hint: 'airlock capture --listen :5000 --write airlock.yaml --record capture.jsonl' });
      const report = await readCapture(record, { write, compare });
      return finish(out, report);
    }
    await using session = sessionFrom(values, out);
    const cap = await capture({
      listen,
      upstream: values.upstream as string | undefined,
      tlsCert: values['tls-cert'] as string | undefined,
      tlsKey: values['tls-key'] as string | undefined,
      record,
      write,
      compare,
      session,
      onEvent: (e) => {
        if (e.type === 'warning') return out.warning(e);
        if (e.type !== 'pull') return;
        if (out.mode === 'json') out.event({ ...e });
        else if (out.mode !== 'quiet') process.stderr.write(`${recordLine(e)}\n`);
      },
    });
    let report: CaptureReport;
    try {
      out.event({ type: 'listening', url: cap.url, address: cap.address, port: cap.port, tls: cap.tls, upstream: cap.upstream });
      out.info(`capturing on ${cap.url}${cap.address === '::' || cap.address === '0.0.0.0' ? ' (every address)' : ''}; requests without ?ns= go to ${cap.upstream}`);
      out.info(`point nodes at it: airlock mirrors-config --source REGISTRY... --registry HOST:${cap.port} --format containerd|k3s`);
      await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
      out.info('stopping: finishing pulls in flight');
    } finally {
      report = await cap.stop();
    }
    return finish(out, report);
  },
});

function finish(out: Output, report: CaptureReport): number {
  for (const r of report.refused) {
    out.warning({ code: 'UPSTREAM_CONTENT_REFUSED', message: `${r.kind} ${r.registry}/${r.repository}${r.reference.includes(':') ? '@' : ':'}${r.reference} from ${r.client}: refused, ${r.error ?? 'bytes upstream do not match their digest'}` });
  }
  const lines: string[] = [];
  const images = report.images;
  lines.push(`${images.length} image${images.length === 1 ? '' : 's'} pulled${images.length === 0 ? '' : ':'}`);
  for (const i of images) {
    const name = `${i.registry}/${i.repository}`;
    const refs = i.tags.length > 0 ? i.tags.map((t) => `${name}:${t}@${i.digest}`) : [`${name}@${i.digest}`];
    for (const ref of refs) lines.push(`  ${ref}${i.platforms.length > 0 ? `  (${i.platforms.join(', ')})` : ''}  by ${i.clients.join(', ')}`);
  }
  lines.push(`upstream registries asked for:${report.upstreams.length === 0 ? ' none' : ''}`);
  for (const u of report.upstreams) lines.push(`  ${u.registry}  ${u.requests} request${u.requests === 1 ? '' : 's'}${u.failed > 0 ? `, ${u.failed} not answered whole` : ''}`);
  if (report.notFound.length > 0) lines.push('not found upstream (asked for by nodes):', ...report.notFound.map((r) => `  ${r}`));
  if (report.spec) {
    const s = report.spec;
    lines.push(s.written ? `${s.created ? 'created' : 'updated'} ${s.path}: ${count(s.added.length, 'image')} added${s.alreadyPresent.length ? `, ${s.alreadyPresent.length} already there` : ''}` : `${s.path} already lists every image pulled; not changed`);
  }
  if (report.compare) {
    const c = report.compare;
    lines.push(`discovery missed these (pulled, not predicted):${c.missed.length === 0 ? ' none' : ''}`, ...c.missed.map((r) => `  ${r}`));
    lines.push(`predicted, pulled by no node:${c.unused.length === 0 ? ' none' : ''}`, ...c.unused.map((r) => `  ${r}`));
  }
  out.result(
    {
      images: report.images,
      upstreams: report.upstreams,
      refused: report.refused,
      notFound: report.notFound,
      requests: report.requests,
      ...(report.record ? { record: report.record } : {}),
      ...(report.spec ? { spec: { path: report.spec.path, added: report.spec.added, alreadyPresent: report.spec.alreadyPresent, created: report.spec.created, written: report.spec.written } } : {}),
      ...(report.compare ? { compare: report.compare } : {}),
    },
    lines.join('\n'),
  );
  return ExitCode.ok;
}

/** client "GET registry/repo:ref" → digest size outcome. */
function recordLine(r: PullRecord): string {
  const ref = `${r.registry}/${r.repository}${r.reference.includes(':') ? '@' : ':'}${r.reference}`;
  return `${r.client || '-'} [${r.time}] "${r.method} ${r.kind} ${ref}" ${r.status} ${r.outcome}${r.digest && r.digest !== r.reference ? ` ${r.digest}` : ''}${r.size !== undefined ? ` ${r.size}` : ''}${r.platform ? ` ${r.platform}` : ''} ${r.ms}ms${r.error ? ` error="${r.error}"` : ''}`;
}
