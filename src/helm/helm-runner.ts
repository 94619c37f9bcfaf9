// The one seam for the helm and kubectl binaries (ARCHITECTURE.md convention 10).
//
// Every run gets private HELM_CACHE_HOME / HELM_CONFIG_HOME / HELM_DATA_HOME temp dirs, so a
// user's repositories, registry logins and plugins never change what airlock sees, and nothing
// is left behind. Unless the caller asks for the network, helm and kubectl are pointed at a dead
// proxy: Go's HTTP client and git both honour it, and it exempts loopback, so a chart that would
// quietly fetch something (a remote kustomize base, a repository lookup) fails loudly instead.
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { NotFoundError, UsageError } from '../core/errors.ts';
import { BinaryNotFoundError, findExecutable, runProcess, type ProcessResult } from '../util/run-process.ts';

export interface HelmOptions {
  /** The helm binary; default $AIRLOCK_HELM, else `helm` on PATH. */
  helm?: string;
  signal?: AbortSignal;
  /** Base environment (default process.env). Helm state variables set here win over the private ones. */
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface RunOptions {
  /** Names the thing being worked on in errors, e.g. `chart ./shop with values a.yaml`. */
  what?: string;
  /** Let the binary open connections beyond loopback (helm pull/push). Default false. */
  network?: boolean;
  /** Fail when stdout grows beyond this (default 256 MiB): rendered manifests are held in memory. */
  maxOutputBytes?: number;
}

export interface KubectlOptions {
  /** The kubectl binary; default $AIRLOCK_KUBECTL, else a kubectl beside the helm binary, else PATH. */
  kubectl?: string;
  /** Used only to look for a kubectl beside it. */
  helm?: string;
  signal?: AbortSignal;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
}

export interface RunResult {
  stdout: string;
  stderr: string;
}

const HELM_STATE_VARS = [
  'HELM_CACHE_HOME',
  'HELM_CONFIG_HOME',
  'HELM_DATA_HOME',
  'HELM_REPOSITORY_CONFIG',
  'HELM_REPOSITORY_CACHE',
  'HELM_REGISTRY_CONFIG',
  'HELM_PLUGINS',
  'HELM_CONTENT_CACHE',
] as const;
const PROXY_VARS = ['HTTP_PROXY', 'HTTPS_PROXY', 'ALL_PROXY', 'http_proxy', 'https_proxy', 'all_proxy'] as const;
// Port 9 (discard) on loopback: nothing listens there, so every proxied connection is refused at once.
const DEAD_PROXY = 'http://127.0.0.1:9';
const DEFAULT_MAX_OUTPUT = 256 * 1024 * 1024;

const HELM_INSTALL_HINT =
  'install helm (https://helm.sh/docs/intro/install/) and put it on PATH, or name the helm binary (or set AIRLOCK_HELM)';
const KUBECTL_INSTALL_HINT =
  'kustomize directories are built with `kubectl kustomize`: install kubectl and put it on PATH, or name the kubectl binary (or set AIRLOCK_KUBECTL)';

type Tool = 'helm' | 'kubectl';
const NOT_FOUND_CODE = { helm: 'HELM_NOT_FOUND', kubectl: 'KUBECTL_NOT_FOUND' } as const;

async function explicitBinary(path: string, source: string, tool: Tool, hint: string, cwd: string | undefined, env: NodeJS.ProcessEnv): Promise<string> {
  // A bare name ("helm3") is looked up on PATH like a shell would; anything with a slash is a path.
  const found = await findExecutable(path, { env, cwd });
  if (found) return found;
  throw new NotFoundError(`${tool} binary "${path}" (from ${source}) does not exist or is not an executable file`, {
    code: NOT_FOUND_CODE[tool],
    hint,
  });
}

/** The helm binary: opts.helm, else $AIRLOCK_HELM, else `helm` on PATH; NotFoundError with an install hint if none. */
export async function findHelm(opts: HelmOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  if (opts.helm) return explicitBinary(opts.helm, 'the helm option', 'helm', HELM_INSTALL_HINT, opts.cwd, env);
  if (env.AIRLOCK_HELM) return explicitBinary(env.AIRLOCK_HELM, '$AIRLOCK_HELM', 'helm', HELM_INSTALL_HINT, opts.cwd, env);
  const found = await findExecutable('helm', { env });
  if (found) return found;
  throw new NotFoundError('helm is needed to render charts but was not found on PATH', { code: 'HELM_NOT_FOUND', hint: HELM_INSTALL_HINT });
}

/** The kubectl binary: opts.kubectl, else $AIRLOCK_KUBECTL, else beside the helm binary, else `kubectl` on PATH. */
export async function findKubectl(opts: KubectlOptions = {}): Promise<string> {
  const env = opts.env ?? process.env;
  if (opts.kubectl) return explicitBinary(opts.kubectl, 'the kubectl option', 'kubectl', KUBECTL_INSTALL_HINT, opts.cwd, env);
  if (env.AIRLOCK_KUBECTL) return explicitBinary(env.AIRLOCK_KUBECTL, '$AIRLOCK_KUBECTL', 'kubectl', KUBECTL_INSTALL_HINT, opts.cwd, env);
  const helm = opts.helm ?? env.AIRLOCK_HELM;
  if (helm && helm.includes('/')) {
    const beside = await findExecutable(join(dirname(isAbsolute(helm) ? helm : resolve(opts.cwd ?? process.cwd(), helm)), 'kubectl'));
    if (beside) return beside;
  }
  const found = await findExecutable('kubectl', { env });
  if (found) return found;
  throw new NotFoundError('kubectl is needed to build kustomize directories but was not found on PATH', {
    code: 'KUBECTL_NOT_FOUND',
    hint: KUBECTL_INSTALL_HINT,
  });
}

function offlineEnv(env: NodeJS.ProcessEnv): void {
  for (const v of PROXY_VARS) env[v] = DEAD_PROXY;
  delete env.NO_PROXY;
  delete env.no_proxy;
  // git (kustomize remote bases) must never sit waiting for a password.
  env.GIT_TERMINAL_PROMPT = '0';
}

/**
 * Run helm with private HELM_CACHE_HOME/HELM_CONFIG_HOME/HELM_DATA_HOME temp dirs (removed after); on failure a
 * UsageError (code HELM_FAILED) carrying helm's stderr and naming the chart/values when given.
 */
export async function runHelm(args: string[], opts: HelmOptions & RunOptions = {}): Promise<RunResult> {
  const helm = await findHelm(opts);
  const state = await mkdtemp(join(tmpdir(), 'airlock-helm-'));
  try {
    const base = opts.env ?? process.env;
    const env: NodeJS.ProcessEnv = { ...base };
    // Inherited helm state would bring in a user's repositories, logins and plugins: drop it,
    // then let variables the caller set explicitly (e.g. a registry config for a pull) win.
    for (const v of HELM_STATE_VARS) delete env[v];
    env.HELM_CACHE_HOME = join(state, 'cache');
    env.HELM_CONFIG_HOME = join(state, 'config');
    env.HELM_DATA_HOME = join(state, 'data');
    env.HELM_REPOSITORY_CONFIG = join(state, 'config', 'repositories.yaml');
    env.HELM_REPOSITORY_CACHE = join(state, 'cache', 'repository');
    env.HELM_REGISTRY_CONFIG = join(state, 'config', 'registry', 'config.json');
    env.HELM_PLUGINS = join(state, 'data', 'plugins');
    if (opts.env) for (const v of HELM_STATE_VARS) if (opts.env[v] !== undefined) env[v] = opts.env[v];
    // helm talks to a cluster only for install/upgrade; template and friends must not find one.
    env.KUBECONFIG = join(state, 'kubeconfig');
    if (!opts.network) offlineEnv(env);
    await mkdir(join(state, 'config'), { recursive: true });
    return await runBinary(helm, args, { ...opts, env, tool: 'helm', code: 'HELM_FAILED' });
  } finally {
    await rm(state, { recursive: true, force: true });
  }
}

/**
 * Run kubectl (used for `kubectl kustomize DIR`) with a private, empty kubeconfig and cache, offline
 * unless `network` is set; on failure a UsageError (code KUBECTL_FAILED) carrying kubectl's stderr.
 */
export async function runKubectl(args: string[], opts: KubectlOptions & RunOptions = {}): Promise<RunResult> {
  const kubectl = await findKubectl(opts);
  const state = await mkdtemp(join(tmpdir(), 'airlock-kubectl-'));
  try {
    const env: NodeJS.ProcessEnv = { ...(opts.env ?? process.env) };
    env.KUBECONFIG = join(state, 'kubeconfig');
    env.KUBECACHEDIR = join(state, 'cache');
    if (!opts.network) offlineEnv(env);
    return await runBinary(kubectl, args, { ...opts, env, tool: 'kubectl', code: 'KUBECTL_FAILED' });
  } finally {
    await rm(state, { recursive: true, force: true });
  }
}

interface SpawnOptions extends RunOptions {
  env: NodeJS.ProcessEnv;
  cwd?: string | undefined;
  signal?: AbortSignal | undefined;
  tool: Tool;
  code: 'HELM_FAILED' | 'KUBECTL_FAILED';
}

async function runBinary(bin: string, args: string[], opts: SpawnOptions): Promise<RunResult> {
  const max = opts.maxOutputBytes ?? DEFAULT_MAX_OUTPUT;
  let r: ProcessResult;
  try {
    r = await runProcess(bin, args, { cwd: opts.cwd, env: opts.env, signal: opts.signal, maxOutputBytes: max });
  } catch (e) {
    if (e instanceof BinaryNotFoundError) {
      throw new NotFoundError(`${opts.tool} binary "${bin}" could not be started (${e.reason === 'missing' ? 'not found' : 'not executable'})`, {
        code: NOT_FOUND_CODE[opts.tool],
        cause: e,
        hint: opts.tool === 'helm' ? HELM_INSTALL_HINT : KUBECTL_INSTALL_HINT,
      });
    }
    throw e;
  }
  const command = `${opts.tool} ${args[0] ?? ''}`.trim();
  const what = opts.what ? ` for ${opts.what}` : '';
  if (r.stopped === 'output-limit') {
    throw new UsageError(`${command}${what} wrote more than ${max} bytes of output`, {
      code: opts.code,
      hint: 'render fewer charts or files at a time',
    });
  }
  if (r.exitCode !== 0) {
    const how = r.exitCode === null ? `was killed by ${r.signal ?? 'a signal'}` : `exited with status ${r.exitCode}`;
    const detail = r.stderr.trim();
    throw new UsageError(`${command}${what} failed (${how})${detail ? `:\n${indent(detail)}` : ''}`, {
      code: opts.code,
      hint: failureHint(opts.tool, detail, opts.network === true),
    });
  }
  return { stdout: r.stdout, stderr: r.stderr };
}

function failureHint(tool: string, stderr: string, network: boolean): string {
  if (!network && /missing in charts\/ directory|dependency build|dependency update|no cached repo|repo .* not found/i.test(stderr)) {
    return `${tool} runs offline here with no repositories configured, so a chart must carry its dependencies in charts/: run \`helm dependency build CHART\` on a connected machine first`;
  }
  if (!network && /proxyconnect|127\.0\.0\.1:9|connection refused|no such host|dial tcp/i.test(stderr)) {
    return `${tool} tried to reach the network, which airlock does not allow here: give it local files only (charts with their dependencies vendored, kustomize bases on disk)`;
  }
  return `the message above is ${tool}'s own`;
}

function indent(text: string): string {
  return text
    .split('\n')
    .map((l) => `    ${l}`)
    .join('\n');
}
