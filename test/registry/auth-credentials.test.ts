// Credentials from docker config.json, containers auth.json and real credential-helper programs.
// Every store gets its own env and homeDir, so nothing here reads the machine's own config or
// touches process.env.
import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AuthError } from '../../src/core/errors.ts';
import { authFilePaths, loadCredentialStore } from '../../src/registry/auth/index.ts';
import { running, until } from '../helpers/wait.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

let root: string;
let n = 0;
/** A fresh, empty home directory per test: no config unless the test writes one. */
async function freshDir(): Promise<string> {
  const d = join(root, `case-${n++}`);
  await mkdir(d, { recursive: true });
  return d;
}
async function writeJson(path: string, value: unknown): Promise<string> {
  await mkdir(join(path, '..'), { recursive: true });
  await writeFile(path, JSON.stringify(value));
  return path;
}

/**
 * docker-credential-airlocktest: answers from a table keyed by the server URL on stdin, records what
 * it was asked in $AIRLOCK_HELPER_LOG, and speaks the protocol's "credentials not found" otherwise.
 */
const HELPER = `#!/bin/sh
[ "$1" = get ] || { echo "unsupported: $1" >&2; exit 2; }
server=$(cat)
[ -n "$AIRLOCK_HELPER_LOG" ] && printf '%s\\n' "$server" >> "$AIRLOCK_HELPER_LOG"
case "$server" in
  127.0.0.1:5999) printf '{"ServerURL":"%s","Username":"helperuser","Secret":"helper-secret-1"}' "$server" ;;
  https://index.docker.io/v1/) printf '{"ServerURL":"%s","Username":"hubuser","Secret":"hub-secret"}' "$server" ;;
  token.example:443) printf '{"ServerURL":"%s","Username":"<token>","Secret":"identity-tok-42"}' "$server" ;;
  broken.example) echo 'keychain locked; password was hunter2-secret Bearer abcdefgh12345678' >&2; exit 3 ;;
  garbage.example) echo 'not json hunter2-secret' ;;
  slow.example) [ -n "$AIRLOCK_HELPER_PID" ] && echo $$ > "$AIRLOCK_HELPER_PID"; exec sleep 10 ;;
  forking.example) sleep 1000 & echo "$$ $!" > "$AIRLOCK_HELPER_PIDS"; wait ;;
  *) echo "credentials not found in native keychain"; exit 1 ;;
esac
`;

let binDir: string;
let helperEnv: NodeJS.ProcessEnv;

before(async () => {
  root = await mkdtemp(join(tmpdir(), 'airlock-auth-creds-'));
  binDir = join(root, 'bin');
  await mkdir(binDir);
  await writeFile(join(binDir, 'docker-credential-airlocktest'), HELPER);
  await chmod(join(binDir, 'docker-credential-airlocktest'), 0o755);
  // The helper is on PATH for these stores only: the env object is passed in, never installed globally.
  helperEnv = { PATH: `${binDir}:${process.env.PATH ?? '/usr/bin:/bin'}` };
});
after(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('auth file locations', () => {
  it('are searched in containers-then-docker order', () => {
    const paths = authFilePaths({
      env: { REGISTRY_AUTH_FILE: '/a/auth.json', XDG_RUNTIME_DIR: '/run/user/1', DOCKER_CONFIG: '/d' },
      homeDir: '/home/u',
    });
    assert.deepEqual(paths, ['/a/auth.json', '/run/user/1/containers/auth.json', '/home/u/.config/containers/auth.json', '/d/config.json']);
    // Without $XDG_RUNTIME_DIR podman logs in (as root) to /run/containers/$UID/auth.json.
    assert.deepEqual(authFilePaths({ env: {}, homeDir: '/home/u' }), [`/run/containers/${process.getuid!()}/auth.json`, '/home/u/.config/containers/auth.json', '/home/u/.docker/config.json']);
  });
});

describe('docker config.json via DOCKER_CONFIG', () => {
  it('reads base64 `auth` and username/password entries under every key spelling', async () => {
    const home = await freshDir();
    const dockerDir = join(home, 'dockercfg');
    await writeJson(join(dockerDir, 'config.json'), {
      auths: {
        '127.0.0.1:5000': { auth: b64('alice:pa:ss') },
        'https://registry.example.com': { auth: b64('bob:pw2') },
        'http://plain.example:8080/v1/': { username: 'carol', password: 'pw3' },
        'https://index.docker.io/v1/': { auth: b64('hubby:hubpw') },
        'quay.io/some-org': { auth: b64('scoped:nope') },
      },
    });
    const store = loadCredentialStore({ env: { DOCKER_CONFIG: dockerDir }, homeDir: home });
    assert.deepEqual(await store.get('127.0.0.1:5000'), { username: 'alice', password: 'pa:ss' });
    assert.deepEqual(await store.get('registry.example.com'), { username: 'bob', password: 'pw2' });
    assert.deepEqual(await store.get('REGISTRY.example.com'), { username: 'bob', password: 'pw2' });
    assert.deepEqual(await store.get('plain.example:8080'), { username: 'carol', password: 'pw3' });
    for (const hub of ['docker.io', 'index.docker.io', 'registry-1.docker.io']) {
      assert.deepEqual(await store.get(hub), { username: 'hubby', password: 'hubpw' }, hub);
    }
    // A repository-scoped key never stands for the whole registry; an unknown registry has nothing.
    assert.equal(await store.get('quay.io'), undefined);
    assert.equal(await store.get('127.0.0.1:5001'), undefined);
  });

  it('keeps identity and registry tokens, and skips empty placeholder entries', async () => {
    const home = await freshDir();
    const dockerDir = join(home, 'd');
    await writeJson(join(dockerDir, 'config.json'), {
      auths: {
        'id.example': { auth: b64('someone:'), identitytoken: 'refresh-xyz' },
        'rt.example': { registrytoken: 'direct-token' },
        'empty.example': {},
      },
    });
    const store = loadCredentialStore({ env: { DOCKER_CONFIG: dockerDir }, homeDir: home });
    assert.deepEqual(await store.get('id.example'), { username: 'someone', identityToken: 'refresh-xyz' });
    assert.deepEqual(await store.get('rt.example'), { registryToken: 'direct-token' });
    assert.equal(await store.get('empty.example'), undefined);
  });

  it('falls back to ~/.docker/config.json without DOCKER_CONFIG', async () => {
    const home = await freshDir();
    await writeJson(join(home, '.docker', 'config.json'), { auths: { 'h.example': { auth: b64('u:p') } } });
    const store = loadCredentialStore({ env: {}, homeDir: home });
    assert.deepEqual(await store.get('h.example'), { username: 'u', password: 'p' });
  });

  it('names the file, never its content, when it is broken', async () => {
    const home = await freshDir();
    const file = join(home, 'd', 'config.json');
    await mkdir(join(home, 'd'));
    await writeFile(file, '{"auths": {"x": {"password": "hunter2-secret" ');
    const store = loadCredentialStore({ env: { DOCKER_CONFIG: join(home, 'd') }, homeDir: home });
    const err = await store.get('x').then(() => assert.fail('expected AuthError'), (e: unknown) => e);
    assert.ok(err instanceof AuthError);
    assert.equal(err.code, 'AUTH_FILE_INVALID');
    assert.match(err.message, new RegExp(file.replace(/[/.]/g, '\\$&')));
    assert.doesNotMatch(`${err.message} ${err.hint} ${String(err.cause)}`, /hunter2/);

    await writeJson(file, { auths: { 'bad.example': { auth: b64('no-colon-here') } } });
    await assert.rejects(store.get('bad.example'), (e: unknown) => e instanceof AuthError && /bad\.example/.test(e.message) && !/no-colon/.test(e.message));
  });
});

describe('containers auth.json', () => {
  it('REGISTRY_AUTH_FILE wins over XDG_RUNTIME_DIR, ~/.config and the docker config', async () => {
    const home = await freshDir();
    const authFile = await writeJson(join(home, 'custom', 'auth.json'), { auths: { 'r.example': { username: 'from-env-file', password: 'a' } } });
    await writeJson(join(home, 'run', 'containers', 'auth.json'), {
      auths: { 'r.example': { auth: b64('from-runtime:b') }, 's.example': { auth: b64('runtime-s:b') } },
    });
    await writeJson(join(home, '.config', 'containers', 'auth.json'), {
      auths: { 's.example': { auth: b64('config-s:c') }, 't.example': { auth: b64('config-t:c') } },
    });
    await writeJson(join(home, 'docker', 'config.json'), { auths: { 't.example': { auth: b64('docker-t:d') }, 'u.example': { auth: b64('docker-u:d') } } });
    const store = loadCredentialStore({
      env: { REGISTRY_AUTH_FILE: authFile, XDG_RUNTIME_DIR: join(home, 'run'), DOCKER_CONFIG: join(home, 'docker') },
      homeDir: home,
    });
    assert.equal((await store.get('r.example'))?.username, 'from-env-file');
    assert.equal((await store.get('s.example'))?.username, 'runtime-s');
    assert.equal((await store.get('t.example'))?.username, 'config-t');
    assert.equal((await store.get('u.example'))?.username, 'docker-u');
  });

  it('a REGISTRY_AUTH_FILE that does not exist yet is skipped', async () => {
    const home = await freshDir();
    await writeJson(join(home, '.docker', 'config.json'), { auths: { 'r.example': { auth: b64('d:d') } } });
    const store = loadCredentialStore({ env: { REGISTRY_AUTH_FILE: join(home, 'missing.json') }, homeDir: home });
    assert.equal((await store.get('r.example'))?.username, 'd');
  });
});

describe('credential helpers', () => {
  it('credHelpers runs docker-credential-<name> get with the server URL on stdin', async () => {
    const home = await freshDir();
    const log = join(home, 'helper.log');
    await writeJson(join(home, 'd', 'config.json'), {
      credHelpers: { '127.0.0.1:5999': 'airlocktest', 'docker.io': 'airlocktest', 'token.example:443': 'airlocktest' },
      auths: { '127.0.0.1:5999': { auth: b64('file-user:file-pw') } },
    });
    const store = loadCredentialStore({ env: { ...helperEnv, DOCKER_CONFIG: join(home, 'd'), AIRLOCK_HELPER_LOG: log }, homeDir: home });
    // The helper wins over the auths entry for the same registry.
    assert.deepEqual(await store.get('127.0.0.1:5999'), { username: 'helperuser', password: 'helper-secret-1' });
    // Docker Hub is asked for under the URL docker login stores it as.
    assert.deepEqual(await store.get('docker.io'), { username: 'hubuser', password: 'hub-secret' });
    // Username "<token>" means the secret is an identity token.
    assert.deepEqual(await store.get('token.example:443'), { identityToken: 'identity-tok-42' });
    assert.deepEqual((await readFile(log, 'utf8')).split('\n').filter(Boolean), ['127.0.0.1:5999', 'https://index.docker.io/v1/', 'token.example:443']);
  });

  it('credsStore answers for registries without an entry; "not found" falls through to the next file', async () => {
    const home = await freshDir();
    await writeJson(join(home, '.config', 'containers', 'auth.json'), { credsStore: 'airlocktest', auths: { 'elsewhere.example': {} } });
    await writeJson(join(home, '.docker', 'config.json'), { auths: { 'elsewhere.example': { auth: b64('docker-user:x') } } });
    const store = loadCredentialStore({ env: helperEnv, homeDir: home });
    assert.deepEqual(await store.get('127.0.0.1:5999'), { username: 'helperuser', password: 'helper-secret-1' });
    assert.deepEqual(await store.get('elsewhere.example'), { username: 'docker-user', password: 'x' });
    assert.equal(await store.get('nowhere.example'), undefined);
  });

  it('a missing helper binary is an AuthError whose hint names the binary', async () => {
    const home = await freshDir();
    await writeJson(join(home, 'd', 'config.json'), { credHelpers: { 'r.example': 'airlock-not-installed' } });
    const store = loadCredentialStore({ env: { ...helperEnv, DOCKER_CONFIG: join(home, 'd') }, homeDir: home });
    await assert.rejects(store.get('r.example'), (e: unknown) => {
      assert.ok(e instanceof AuthError);
      assert.equal(e.code, 'CREDENTIAL_HELPER_MISSING');
      assert.match(e.message, /docker-credential-airlock-not-installed/);
      assert.match(e.hint ?? '', /docker-credential-airlock-not-installed/);
      return true;
    });
  });

  it('a failing helper is reported by name and exit status, never with what it printed', async () => {
    const home = await freshDir();
    await writeJson(join(home, 'd', 'config.json'), { credHelpers: { 'broken.example': 'airlocktest', 'garbage.example': 'airlocktest' } });
    const store = loadCredentialStore({ env: { ...helperEnv, DOCKER_CONFIG: join(home, 'd') }, homeDir: home });
    await assert.rejects(store.get('broken.example'), (e: unknown) => {
      assert.ok(e instanceof AuthError);
      assert.equal(e.code, 'CREDENTIAL_HELPER_FAILED');
      assert.match(e.message, /docker-credential-airlocktest .*failed for broken\.example \(exit 3\)/);
      assert.match(e.hint ?? '', /echo broken\.example \| docker-credential-airlocktest get/);
      assert.doesNotMatch(`${e.message} ${e.hint}`, /hunter2|abcdefgh12345678|keychain/);
      return true;
    });
    await assert.rejects(store.get('garbage.example'), (e: unknown) => e instanceof AuthError && !/hunter2/.test(e.message));
  });

  it('a helper that hangs is killed after the timeout', async () => {
    const home = await freshDir();
    await writeJson(join(home, 'd', 'config.json'), { credHelpers: { 'slow.example': 'airlocktest' } });
    const pidFile = join(home, 'helper.pid');
    const store = loadCredentialStore({ env: { ...helperEnv, DOCKER_CONFIG: join(home, 'd'), AIRLOCK_HELPER_PID: pidFile }, homeDir: home, helperTimeoutMs: 300 });
    // The helper sleeps 10 s: a TIMEOUT (not a helper that ended without an answer) shows the timeout fired.
    await assert.rejects(store.get('slow.example'), (e: unknown) => e instanceof AuthError && e.code === 'CREDENTIAL_HELPER_TIMEOUT' && /docker-credential-airlocktest .*did not answer within/.test(e.message));
    const pid = Number(await readFile(pidFile, 'utf8'));
    await until(() => !running(pid), `credential helper (pid ${pid}) to be killed`);
  });

  it('a helper that hangs with a child of its own: after the timeout neither is left running', async () => {
    const home = await freshDir();
    const pidFile = join(home, 'pids');
    await writeJson(join(home, 'd', 'config.json'), { credHelpers: { 'forking.example': 'airlocktest' } });
    const store = loadCredentialStore({ env: { ...helperEnv, DOCKER_CONFIG: join(home, 'd'), AIRLOCK_HELPER_PIDS: pidFile }, homeDir: home, helperTimeoutMs: 300 });
    await assert.rejects(store.get('forking.example'), (e: unknown) => e instanceof AuthError && e.code === 'CREDENTIAL_HELPER_TIMEOUT');
    const [helper, child] = (await readFile(pidFile, 'utf8')).trim().split(' ').map(Number) as [number, number];
    assert.ok(helper > 0 && child > 0);
    assert.equal(running(helper), false, `helper ${helper} is gone`);
    assert.equal(running(child), false, `the helper's child ${child} is gone`);
  });

  it('refuses helper names that are paths', async () => {
    const home = await freshDir();
    await writeJson(join(home, 'd', 'config.json'), { credsStore: '../../bin/sh' });
    const store = loadCredentialStore({ env: { ...helperEnv, DOCKER_CONFIG: join(home, 'd') }, homeDir: home });
    await assert.rejects(store.get('r.example'), (e: unknown) => e instanceof AuthError && e.code === 'CREDENTIAL_HELPER_INVALID');
  });
});
