import { resolve } from 'node:path';
import { ExitCode, UsageError } from '../../core/errors.ts';
import { DEFAULT_LISTEN, type AccessLogEntry } from '../../serve/server.ts';
import { serve } from '../../api/serve.ts';
import { count } from '../output.ts';
import { defineCommand } from './types.ts';

export const serveCommand = defineCommand({
  name: 'serve',
  summary: 'serve bundles as a read-only OCI registry (and containerd/k3s mirror), no unpacking',
  usage: `Usage: airlock serve BUNDLE... [--listen ADDR] [--tls-cert FILE --tls-key FILE] [--htpasswd FILE] [--prefix P [--keep-host]]

Answers the OCI distribution API (read-only) straight from the bundle files: blobs are read where
they sit in the tar. Several bundles (a base and its updates) are served as one; a later bundle wins
a tag both carry, and the replaced image stays pullable by digest. A delta (pack --since) is served
with its base (airlock serve v1.tar v2.tar): its images take the blobs they rely on from there. A
split bundle is served from its volumes as they are (airlock serve b.tar.* or b.tar).

Every image host/path:tag is served as [PREFIX/]path:tag (where \`airlock push REGISTRY/PREFIX\` puts
it), and as a mirror of its original registry: containerd and k3s pulling docker.io/library/nginx:1.27
through a mirror ask for /v2/library/nginx/manifests/1.27?ns=docker.io, and get it. See
\`airlock mirrors-config\` for the node configuration.

Options:
  --listen ADDR        [HOST]:PORT to listen on (default ${DEFAULT_LISTEN}: every address); port 0 picks a free one
  --tls-cert FILE      serve HTTPS with this PEM certificate (chain) ...
  --tls-key FILE       ... and its PEM private key
  --htpasswd FILE      require Basic auth from this bcrypt htpasswd file (htpasswd -B)
  --prefix P           serve images under P/ (as \`airlock push REGISTRY/P\` places them)
  --keep-host          serve each image under its source registry's host too, as push --keep-host
                       places them (P/quay.io/x/app; localhost:5000 as localhost_5000)
  --key NAME.pub       serve only bundles signed by this key (checked before listening)
  --approved-by REVIEWER.pub
                       serve only bundles this key approved (\`airlock approve\`; repeatable: every
                       one named), checked before listening

Nothing is sent whole before it was checked against its digest (each blob hashed once): a blob
changed after packing is cut short, reported (warning BLOB_DAMAGED) and answered 404 from then on;
a bundle missing a blob an image needs is refused at start (exit 5).

Tools the bundles carry (pack --with-tools) are offered for download, checked like every blob:
GET /tools/ lists them, GET /tools/linux-amd64/airlock sends one (curl -fo airlock URL).
So are the files they carry (files: in airlock.yaml), for nodes being bootstrapped: GET /files/
lists them, GET /files/NAME sends one (curl -fo k3s URL/files/k3s; chmod as GET /files/ says).

Writes are refused (405). An access log line per request goes to stderr (NDJSON with --json, with a
blob-check line per blob checked).
Each bundle served is recorded in the import history (\`airlock history\`).
Stops on SIGINT/SIGTERM: no new connections, requests in flight finish (up to 10 s).`,
  options: {
    listen: { type: 'string' },
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    htpasswd: { type: 'string' },
    prefix: { type: 'string' },
    'keep-host': { type: 'boolean' },
    key: { type: 'string' },
    'approved-by': { type: 'string', multiple: true },
  },
  async run({ values, positionals, out, signal }) {
    if (positionals.length === 0) throw new UsageError('serve needs at least one bundle: airlock serve BUNDLE... [--listen ADDR]');
    const srv = await serve(positionals, {
      listen: values.listen as string | undefined,
      tlsCert: values['tls-cert'] as string | undefined,
      tlsKey: values['tls-key'] as string | undefined,
      htpasswd: values.htpasswd as string | undefined,
      prefix: values.prefix as string | undefined,
      keepHost: values['keep-host'] === true,
      key: values.key as string | undefined,
      approvedBy: values['approved-by'] as string[] | undefined,
      signal,
      onEvent: (e) => {
        if (e.type === 'warning') return out.warning(e);
        if (out.mode === 'quiet') return;
        // A blob found damaged is a warning (above); the checks themselves are for --json readers.
        if (out.mode === 'json') process.stderr.write(`${JSON.stringify(e)}\n`);
        else if (e.type === 'access') process.stderr.write(`${accessLine(e)}\n`);
      },
    });
    try {
      out.event({ type: 'listening', url: srv.url, address: srv.address, port: srv.port, tls: srv.tls, auth: srv.auth, bundles: positionals.map((p) => resolve(p)), images: srv.images, tools: srv.tools, files: srv.files });
      out.info(`serving ${count(srv.images.length, 'image')} from ${count(srv.bundles.length, 'bundle')}:`);
      for (const i of srv.images) out.info(`  ${i.served}  (${i.image})`);
      if (srv.tools.length > 0) out.info(`offering the tools they carry:\n${srv.tools.map((t) => `  ${t.url}`).join('\n')}`);
      if (srv.files.length > 0) out.info(`offering the files they carry:\n${srv.files.map((f) => `  ${f.url}  (mode ${f.mode})`).join('\n')}`);
      out.info(`listening on ${srv.url}${srv.address === '::' || srv.address === '0.0.0.0' ? ' (every address)' : ''}${srv.auth ? ', Basic auth required' : ''}`);
      await new Promise<void>((r) => (signal.aborted ? r() : signal.addEventListener('abort', () => r(), { once: true })));
      out.info('stopping: finishing requests in flight');
    } finally {
      await srv.close();
    }
    out.result({ stopped: true, url: srv.url, requests: srv.requests }, `stopped after ${srv.requests} request${srv.requests === 1 ? '' : 's'}`);
    return ExitCode.ok;
  },
});

/** Common-log-like: remote user "METHOD path" status bytes time. Never a credential. */
function accessLine(e: AccessLogEntry): string {
  return `${e.remote || '-'} ${e.user ?? '-'} [${e.time}] "${e.method} ${e.path}" ${e.status} ${e.bytes} ${e.ms}ms${e.aborted ? ' aborted' : ''}${e.error ? ` error="${e.error}"` : ''}`;
}
