// `airlock login` / `airlock logout`, as docker and podman users type them. The login is checked
// against the registry before it is saved (a wrong password fails here, not at the first pack) and
// saved where docker, podman and skopeo read it (src/registry/auth/login-store.ts says where).
import { ExitCode, UsageError } from '../../core/errors.ts';
import type { Credential } from '../../registry/auth/credential.ts';
import { loginFilePath, loginRegistry, removeLogin, storeLogin } from '../../registry/auth/login-store.ts';
import { promptLine, readSecretFromStdin } from '../prompt.ts';
import { registryOptions, registryUsage, sessionFrom } from './registry-flags.ts';
import { defineCommand } from './types.ts';

export const loginCommand = defineCommand({
  name: 'login',
  summary: 'log in to a registry, saved where docker, podman and skopeo read it',
  usage: `Usage: airlock login REGISTRY [-u USER] [--password-stdin]
       echo "$PASSWORD" | airlock login registry.example.com -u ci --password-stdin

Checks the user name and password against REGISTRY (GET /v2/, through its token server when it has
one), then saves them where docker, podman and skopeo read credentials, so a login with any of them
serves the others:
  $REGISTRY_AUTH_FILE when set; else the containers auth.json podman writes
  ($XDG_RUNTIME_DIR/containers/auth.json) when it exists; else docker's config.json ($DOCKER_CONFIG
  or ~/.docker) when it exists; else $XDG_RUNTIME_DIR/containers/auth.json, or docker's config.json
  without a runtime dir. A file whose credHelpers or credsStore names a helper for the registry
  hands the login to that docker-credential-* helper, as docker does.
The file keeps every other entry; it is replaced atomically and is mode 0600. A refused password is
an error (exit ${ExitCode.auth}) and nothing is saved. Without --password-stdin or -p, asks on the terminal.

Options:
  -u, --username USER     the user name (asked on the terminal when left out)
  --password-stdin        read the password from stdin (one trailing newline is dropped)
  -p, --password PASS     the password on the command line: other users can see it in the process
                          list and it stays in shell history; prefer --password-stdin

${registryUsage}`,
  options: {
    username: { type: 'string', short: 'u' },
    password: { type: 'string', short: 'p' },
    'password-stdin': { type: 'boolean', default: false },
    ...registryOptions,
  },
  async run({ values, positionals, out, signal }) {
    if (positionals.length !== 1) throw new UsageError('login needs one registry: airlock login REGISTRY [-u USER] [--password-stdin]');
    const registry = loginRegistry(positionals[0]!);
    let username = values.username as string | undefined;
    let password = values.password as string | undefined;
    if (password !== undefined && values['password-stdin'] === true) throw new UsageError('--password and --password-stdin are mutually exclusive');
    if (password !== undefined) out.warning({ code: 'PASSWORD_ON_COMMAND_LINE', message: 'using --password on the command line is insecure (process list, shell history); use --password-stdin' });
    if (values['password-stdin'] === true) {
      if (username === undefined) throw new UsageError('--password-stdin needs the user name: -u USER');
      password = await readSecretFromStdin();
    }
    if (username === undefined || password === undefined) {
      if (!process.stdin.isTTY) throw new UsageError('no password given and no terminal to ask on', { hint: 'pipe it in: echo "$PASSWORD" | airlock login REGISTRY -u USER --password-stdin' });
      username ??= await promptLine('Username: ', { echo: true });
      password ??= await promptLine('Password: ', { echo: false });
    }
    if (username.length === 0) throw new UsageError('the user name is empty');
    // Basic auth and the auth.json `auth` field join them with a colon: one in the name cannot be read back.
    if (username.includes(':')) throw new UsageError(`the user name "${username}" contains ":"`, { hint: 'a registry user name cannot contain a colon' });
    if (password.length === 0) throw new UsageError('the password is empty');

    let asked = false;
    const credential: Credential = { username, password };
    {
      await using session = sessionFrom(values, out, {
        credentials: {
          async get() {
            asked = true;
            return credential;
          },
        },
      });
      await session.registry.ping(registry, signal);
    }
    if (!asked) out.warning({ code: 'LOGIN_NOT_REQUIRED', message: `${registry} did not ask for credentials; saving them anyway` });
    const saved = await storeLogin(registry, username, password, { signal });
    const where = saved.helper ? `${saved.helper} (configured in ${saved.path})` : saved.path;
    out.result({ registry, username, path: saved.path, key: saved.key, ...(saved.helper ? { helper: saved.helper } : {}), verified: asked }, `Login Succeeded: ${username} at ${registry}, saved in ${where}`);
    return ExitCode.ok;
  },
});

export const logoutCommand = defineCommand({
  name: 'logout',
  summary: 'forget the login for a registry (in every credentials file airlock reads)',
  usage: `Usage: airlock logout REGISTRY

Removes REGISTRY's entries (every spelling: host:port, https://host, …) from every credentials file
airlock reads ($REGISTRY_AUTH_FILE, containers auth.json, docker's config.json) and asks the
docker-credential-* helper they name for it to erase it, so nothing airlock would use is left.
Other entries are kept. Not being logged in is not an error.`,
  options: {},
  async run({ positionals, out, signal }) {
    if (positionals.length !== 1) throw new UsageError('logout needs one registry: airlock logout REGISTRY');
    const registry = loginRegistry(positionals[0]!);
    const removed = await removeLogin(registry, { signal });
    const from = [...removed.paths, ...removed.helpers];
    out.result(
      { registry, removed: from.length > 0, paths: removed.paths, helpers: removed.helpers },
      from.length > 0 ? `Removed login credentials for ${registry} from ${from.join(', ')}` : `not logged in to ${registry} (nothing in ${await loginFilePath()} or the other credentials files)`,
    );
    return ExitCode.ok;
  },
});
