// Chart test set-up: the fixture charts copied with the test's repository URLs filled in, a Helm
// chart repository served by a tiny loopback HTTP server, and the pinned helm binary run with one
// private state folder per test file (so `helm repo add` is seen by `helm dependency build`).
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { cp, mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { runHelm } from '../../src/helm/helm-runner.ts';
import { helmPath } from '../helpers/helm.ts';

export const FIXTURES = fileURLToPath(new URL('../fixtures/charts/', import.meta.url));

/** Copy fixture charts into `dir`, replacing {{HTTP_REPO}} / {{OCI_REPO}} in every YAML file. */
export async function copyFixtures(dir: string, names: string[], vars: Record<string, string>): Promise<void> {
  for (const name of names) {
    await cp(join(FIXTURES, name), join(dir, name), { recursive: true });
    await substitute(join(dir, name), vars);
  }
}

async function substitute(dir: string, vars: Record<string, string>): Promise<void> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const p = join(dir, entry.name);
    if (entry.isDirectory()) await substitute(p, vars);
    else if (/\.ya?ml$|\.lock$/.test(entry.name)) {
      let text = await readFile(p, 'utf8');
      for (const [k, v] of Object.entries(vars)) text = text.replaceAll(`{{${k}}}`, v);
      await writeFile(p, text);
    }
  }
}

/** Rewrite `version:` in a chart's Chart.yaml (to publish one fixture at several versions). */
export async function setChartVersion(chartDir: string, version: string): Promise<void> {
  const p = join(chartDir, 'Chart.yaml');
  await writeFile(p, (await readFile(p, 'utf8')).replace(/^version: .*$/m, `version: ${version}`));
}

export interface Helm {
  run(args: string[], opts?: { cwd?: string }): Promise<{ stdout: string; stderr: string }>;
}

/** The pinned helm with its state (repositories, registry logins) kept in `stateDir`. */
export function helmWithState(stateDir: string): Helm {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    HELM_CACHE_HOME: join(stateDir, 'cache'),
    HELM_CONFIG_HOME: join(stateDir, 'config'),
    HELM_DATA_HOME: join(stateDir, 'data'),
    HELM_REPOSITORY_CONFIG: join(stateDir, 'config', 'repositories.yaml'),
    HELM_REPOSITORY_CACHE: join(stateDir, 'cache', 'repository'),
    HELM_REGISTRY_CONFIG: join(stateDir, 'config', 'registry.json'),
    HELM_PLUGINS: join(stateDir, 'data', 'plugins'),
  };
  return {
    run: (args, opts = {}) => runHelm(args, { helm: helmPath(), env, network: true, ...(opts.cwd ? { cwd: opts.cwd } : {}) }),
  };
}

export interface ChartRepoServer {
  /** http://127.0.0.1:PORT (or https://…) */
  url: string;
  host: string;
  dir: string;
  /** Paths requested, in order. */
  requests: string[];
  close(): Promise<void>;
}

/**
 * A static file server over `dir` on a free loopback port: a Helm chart repository once
 * index.yaml is there. With `tls`, HTTPS with that key pair; with `basic`, Basic auth required.
 */
export async function startChartRepo(dir: string, opts: { tls?: { key: string; cert: string }; basic?: { username: string; password: string } } = {}): Promise<ChartRepoServer> {
  await mkdir(dir, { recursive: true });
  const requests: string[] = [];
  const handler = async (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse): Promise<void> => {
    const path = decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname);
    requests.push(path);
    if (opts.basic) {
      const want = `Basic ${Buffer.from(`${opts.basic.username}:${opts.basic.password}`).toString('base64')}`;
      if (req.headers.authorization !== want) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="charts"' }).end();
        return;
      }
    }
    const file = normalize(join(dir, path));
    if (!file.startsWith(dir) || !(await stat(file).then((s) => s.isFile(), () => false))) {
      res.writeHead(404).end('not found');
      return;
    }
    const body = await readFile(file);
    res.writeHead(200, { 'content-type': file.endsWith('.yaml') ? 'text/yaml' : 'application/gzip', 'content-length': body.length }).end(body);
  };
  const server: Server = opts.tls
    ? createHttpsServer({ key: opts.tls.key, cert: opts.tls.cert }, (q, s) => void handler(q, s))
    : createServer((q, s) => void handler(q, s));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  return {
    url: `${opts.tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    dir,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function removeDir(dir: string | undefined): Promise<void> {
  if (dir) await rm(dir, { recursive: true, force: true });
}
