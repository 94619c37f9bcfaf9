// Where a login is written and how it is removed, without a registry: the file chosen by what the
// user has, Docker Hub's key spelled as each tool expects, other spellings replaced, symlinks kept.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { lstat, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { loginFilePath, loginRegistry, removeLogin, storeLogin } from '../../src/registry/auth/login-store.ts';
import { loadCredentialStore } from '../../src/registry/auth/index.ts';

async function home(): Promise<{ root: string; env: NodeJS.ProcessEnv; done: () => Promise<void> }> {
  const root = await mkdtemp(join(tmpdir(), 'airlock-login-store-'));
  await mkdir(join(root, 'run'));
  return { root, env: { HOME: root, XDG_RUNTIME_DIR: join(root, 'run') }, done: () => rm(root, { recursive: true, force: true }) };
}

test('the file: REGISTRY_AUTH_FILE, else an existing auth.json, else an existing docker config, else auth.json', async () => {
  const h = await home();
  try {
    const runtime = join(h.root, 'run', 'containers', 'auth.json');
    const docker = join(h.root, '.docker', 'config.json');
    assert.equal(await loginFilePath({ env: h.env }), runtime);
    assert.equal(await loginFilePath({ env: { HOME: h.root } }), docker, 'no runtime dir: the file all three tools read');
    await mkdir(join(h.root, '.docker'));
    await writeFile(docker, '{}');
    assert.equal(await loginFilePath({ env: h.env }), docker);
    await mkdir(join(h.root, 'run', 'containers'));
    await writeFile(runtime, '{}');
    assert.equal(await loginFilePath({ env: h.env }), runtime);
    assert.equal(await loginFilePath({ env: { ...h.env, REGISTRY_AUTH_FILE: '/x/auth.json' } }), '/x/auth.json');
  } finally {
    await h.done();
  }
});

test('Docker Hub: the legacy URL key in docker config.json, docker.io in auth.json; other spellings replaced; logout removes every one', async () => {
  const h = await home();
  try {
    const docker = join(h.root, '.docker', 'config.json');
    await mkdir(join(h.root, '.docker'));
    await writeFile(docker, JSON.stringify({ auths: { 'docker.io': { auth: Buffer.from('old:old').toString('base64') }, 'quay.io/team': { auth: 'x' } } }));
    const saved = await storeLogin(loginRegistry('index.docker.io'), 'me', 'pw', { env: h.env });
    assert.deepEqual(saved, { path: docker, key: 'https://index.docker.io/v1/' });
    const cfg = JSON.parse(await readFile(docker, 'utf8'));
    assert.deepEqual(Object.keys(cfg.auths).sort(), ['https://index.docker.io/v1/', 'quay.io/team'], 'a namespace key is another login');
    assert.deepEqual(await loadCredentialStore({ env: h.env }).get('docker.io'), { username: 'me', password: 'pw' });

    const auth = join(h.root, 'auth.json');
    const viaEnv = await storeLogin('docker.io', 'me', 'pw2', { env: { ...h.env, REGISTRY_AUTH_FILE: auth } });
    assert.equal(viaEnv.key, 'docker.io');
    const removed = await removeLogin('docker.io', { env: { ...h.env, REGISTRY_AUTH_FILE: auth } });
    assert.deepEqual(removed.paths, [auth, docker]);
    assert.equal(await loadCredentialStore({ env: { ...h.env, REGISTRY_AUTH_FILE: auth } }).get('docker.io'), undefined);
    assert.deepEqual((await removeLogin('docker.io', { env: h.env })).paths, []);
  } finally {
    await h.done();
  }
});

test('a symlinked config file is written where it points; a broken file is refused, not replaced', async () => {
  const h = await home();
  try {
    await mkdir(join(h.root, 'dotfiles'));
    await mkdir(join(h.root, '.docker'));
    const real = join(h.root, 'dotfiles', 'docker.json');
    await writeFile(real, '{"auths":{}}');
    await symlink(real, join(h.root, '.docker', 'config.json'));
    await storeLogin('reg.example:5000', 'u', 'p', { env: { HOME: h.root } });
    assert.ok((await lstat(join(h.root, '.docker', 'config.json'))).isSymbolicLink());
    assert.match(await readFile(real, 'utf8'), /reg\.example:5000/);

    await writeFile(real, '{"auths": nope');
    await assert.rejects(storeLogin('reg.example:5000', 'u', 'p', { env: { HOME: h.root } }), (e: Error & { code?: string }) => e.code === 'AUTH_FILE_INVALID' && e.message.includes('is not valid'));
    assert.equal(await readFile(real, 'utf8'), '{"auths": nope');
  } finally {
    await h.done();
  }
});

test('a login is for a whole registry', () => {
  assert.equal(loginRegistry('https://Reg.Example:5000/'), 'reg.example:5000');
  assert.equal(loginRegistry('registry-1.docker.io'), 'docker.io');
  assert.throws(() => loginRegistry('reg.example/team'), /is not a registry: expected HOST\[:PORT\]/);
});
