// The one seam to the real skopeo binary for tests and benchmarks.
//
// skopeo (containers/image) keeps a blob-info cache that remembers which blobs it has seen where;
// shared between runs it makes copies skip or mount blobs, so results depend on earlier runs.
// It has no flag for the cache's location: as root it is always /var/lib/containers/cache, for
// other users $XDG_DATA_HOME/containers/cache. So every run gets its own XDG_DATA_HOME, and when
// running as root, skopeo runs in a new user namespace (`unshare -U`) where it is not root and
// therefore honours it. The namespace shares the network and the file system; files it writes
// are still owned by the calling user. If user namespaces are unavailable, skopeo runs directly
// and shares the system cache (skopeoIsolation() says which).
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Digest, digestOf } from '../../src/core/digest.ts';
import { runBounded, type RunResult } from './run.ts';

export interface SkopeoOptions {
  /** Kill skopeo (by its PID) after this long; default 120 s. */
  timeoutMs?: number;
  /** Reuse this directory for skopeo's state (blob-info cache, temp files) instead of a fresh one. */
  stateDir?: string;
  /** Extra environment variables. */
  env?: Record<string, string>;
}

export interface SkopeoResult {
  stdout: Buffer;
  stderr: string;
}

let isolation: Promise<'userns' | 'user' | 'shared'> | undefined;

/** How runs are kept apart: a user namespace (root), plain XDG_DATA_HOME (non-root), or not at all. */
export function skopeoIsolation(): Promise<'userns' | 'user' | 'shared'> {
  isolation ??= (async () => {
    if (process.geteuid?.() !== 0) return 'user';
    const r = await run('unshare', ['-U', 'true'], {}, 10_000).catch(() => undefined);
    return r?.code === 0 ? 'userns' : 'shared';
  })();
  return isolation;
}

/**
 * Run `skopeo --insecure-policy <args>` with private state; resolves to stdout as text, rejects
 * with an Error carrying the exit status and stderr.
 */
export async function skopeo(args: string[], opts: SkopeoOptions = {}): Promise<string> {
  return (await skopeoRaw(args, opts)).stdout.toString('utf8');
}

/** Like skopeo(), with stdout as bytes (exact manifest bytes matter for digests). */
export async function skopeoRaw(args: string[], opts: SkopeoOptions = {}): Promise<SkopeoResult> {
  const mode = await skopeoIsolation();
  const state = opts.stateDir ?? (await mkdtemp(join(tmpdir(), 'airlock-skopeo-')));
  try {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      XDG_DATA_HOME: join(state, 'data'),
      XDG_RUNTIME_DIR: join(state, 'run'),
      XDG_CONFIG_HOME: join(state, 'config'),
      // No machine-wide docker/podman credentials leak into tests.
      HOME: join(state, 'home'),
      REGISTRY_AUTH_FILE: join(state, 'auth.json'),
      TMPDIR: state,
      ...opts.env,
    };
    const full = ['--insecure-policy', '--tmpdir', state, ...args];
    const [cmd, argv] = mode === 'userns' ? ['unshare', ['-U', 'skopeo', ...full]] : ['skopeo', full];
    const r = await run(cmd, argv, env, opts.timeoutMs ?? 120_000);
    if (r.code !== 0) {
      const why = r.timedOut ? `timed out after ${opts.timeoutMs ?? 120_000} ms` : `exit ${r.code ?? r.signal}`;
      throw new Error(`skopeo ${args.join(' ')} failed (${why}):\n${r.stderr.trim()}`);
    }
    return { stdout: r.stdout, stderr: r.stderr };
  } finally {
    if (opts.stateDir === undefined) await rm(state, { recursive: true, force: true });
  }
}

/** TLS verification is off for docker:// references: test registries are plain-HTTP loopback ones. */
function tlsArgs(ref: string, extra: string[]): string[] {
  return ref.startsWith('docker://') && !extra.some((a) => a.startsWith('--tls-verify') || a.startsWith('--cert-dir'))
    ? ['--tls-verify=false']
    : [];
}

/** The exact manifest (or index) bytes skopeo reads for `ref`, e.g. `docker://127.0.0.1:5000/a/b:1`. */
export async function skopeoInspectRaw(ref: string, extraArgs: string[] = [], opts: SkopeoOptions = {}): Promise<Buffer> {
  return (await skopeoRaw(['inspect', '--raw', ...tlsArgs(ref, extraArgs), ...extraArgs, ref], opts)).stdout;
}

/** The digest of the manifest skopeo reads for `ref` (sha256 of its exact bytes). */
export async function skopeoDigest(ref: string, extraArgs: string[] = [], opts: SkopeoOptions = {}): Promise<Digest> {
  return digestOf(await skopeoInspectRaw(ref, extraArgs, opts));
}

function run(cmd: string, args: string[], env: NodeJS.ProcessEnv, timeoutMs: number): Promise<RunResult> {
  return runBounded(cmd, args, { env, timeoutMs, install: 'skopeo: apt-get install skopeo; unshare: util-linux' });
}
