// docker-credential-<name> helpers (docker-credential-helpers protocol): `get` with the server URL
// on stdin answers {"ServerURL","Username","Secret"} on stdout, or says "credentials not found"
// and exits non-zero. A helper is somebody else's program, so it runs with a deadline and a cap on
// what it may print (util/run-process.ts stops its whole process group when either is passed),
// and nothing it prints ever reaches an error message.
import { AbortedError, AuthError } from '../../core/errors.ts';
import type { Credential } from './credential.ts';
import { BinaryNotFoundError, runProcess, type ProcessResult } from '../../util/run-process.ts';

export interface HelperRunOptions {
  env: NodeJS.ProcessEnv;
  timeoutMs: number;
  maxOutputBytes: number;
  /** Where the helper was configured (a file path), for the hint. */
  configuredIn: string;
  signal?: AbortSignal | undefined;
}

/** Username docker uses to mark Secret as an identity (refresh) token rather than a password. */
const IDENTITY_TOKEN_USER = '<token>';
const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9._-]*$/;

export function helperBinary(name: string): string {
  return `docker-credential-${name}`;
}

export async function runCredentialHelper(name: string, serverUrl: string, opts: HelperRunOptions): Promise<Credential | undefined> {
  const bin = helperBinary(name);
  if (!NAME_RE.test(name)) {
    throw new AuthError(`credential helper name ${JSON.stringify(name)} in ${opts.configuredIn} is not a plain name`, {
      code: 'CREDENTIAL_HELPER_INVALID',
      hint: 'credHelpers / credsStore values name a docker-credential-<name> binary on PATH, e.g. "ecr-login"',
    });
  }
  let result: ProcessResult;
  const where = `(configured in ${opts.configuredIn})`;
  try {
    result = await runProcess(bin, ['get'], {
      env: opts.env,
      input: serverUrl,
      timeoutMs: opts.timeoutMs,
      maxOutputBytes: opts.maxOutputBytes,
      signal: opts.signal,
    });
  } catch (e) {
    if (e instanceof BinaryNotFoundError && e.reason === 'missing') {
      throw new AuthError(`credential helper ${bin} ${where} is not installed or not on PATH`, {
        code: 'CREDENTIAL_HELPER_MISSING',
        hint: `install ${bin} somewhere on PATH, or remove it from credHelpers/credsStore in ${opts.configuredIn}`,
      });
    }
    if (e instanceof BinaryNotFoundError) {
      throw new AuthError(`credential helper ${bin} ${where} is not executable`, {
        code: 'CREDENTIAL_HELPER_MISSING',
        hint: `chmod +x the ${bin} found on PATH`,
      });
    }
    if (e instanceof AbortedError) throw new AbortedError(`interrupted while ${bin} was looking up credentials`, { cause: opts.signal?.reason });
    throw new AuthError(`credential helper ${bin} ${where} could not be started`, { code: 'CREDENTIAL_HELPER_FAILED' });
  }
  const { stdout, stderr, exitCode: exit, stopped } = result;
  if (stopped === 'timeout') {
    throw new AuthError(`credential helper ${bin} ${where} did not answer within ${Math.round(opts.timeoutMs / 1000)} s`, {
      code: 'CREDENTIAL_HELPER_TIMEOUT',
      hint: `run "echo ${serverUrl} | ${bin} get" by hand: it may be waiting for a password prompt or a locked keychain`,
    });
  }
  if (stopped === 'output-limit') {
    throw new AuthError(`credential helper ${bin} ${where} printed more than ${opts.maxOutputBytes} bytes`, {
      code: 'CREDENTIAL_HELPER_FAILED',
    });
  }

  if (exit !== 0) {
    // The protocol's "not found" answer (stdout for docker's helpers, stderr for some others).
    if (/credentials not found/i.test(stdout) || /credentials not found/i.test(stderr)) return undefined;
    // What it printed stays out of the message: a helper may echo anything, the secret included,
    // and no redactor can recognise a password in free prose.
    throw new AuthError(`credential helper ${bin} ${where} failed for ${serverUrl} (exit ${exit ?? 'by signal'})`, {
      code: 'CREDENTIAL_HELPER_FAILED',
      hint: `run "echo ${serverUrl} | ${bin} get" by hand to see its complaint`,
    });
  }

  let parsed: unknown;
  try {
    parsed = JSON.parse(stdout);
  } catch {
    // Not even the parser's message: it quotes the text, and the text may be the secret.
    throw new AuthError(`credential helper ${bin} ${where} answered ${serverUrl} with something that is not JSON`, {
      code: 'CREDENTIAL_HELPER_FAILED',
    });
  }
  if (typeof parsed !== 'object' || parsed === null) {
    throw new AuthError(`credential helper ${bin} ${where} answered with JSON that is not an object`, { code: 'CREDENTIAL_HELPER_FAILED' });
  }
  const { Username: username, Secret: secret } = parsed as { Username?: unknown; Secret?: unknown };
  if ((username !== undefined && typeof username !== 'string') || (secret !== undefined && typeof secret !== 'string')) {
    throw new AuthError(`credential helper ${bin} ${where} answered with a non-string Username or Secret`, {
      code: 'CREDENTIAL_HELPER_FAILED',
    });
  }
  if (!secret) return undefined;
  if (username === IDENTITY_TOKEN_USER) return { identityToken: secret };
  return { username: username ?? '', password: secret };
}

/** `store`: hand a login to the helper (what `docker login` does when one is configured). */
export async function storeWithCredentialHelper(name: string, serverUrl: string, username: string, secret: string, opts: HelperRunOptions): Promise<void> {
  const bin = helperBinary(name);
  const r = await runHelper(name, 'store', JSON.stringify({ ServerURL: serverUrl, Username: username, Secret: secret }), opts);
  if (r.exitCode !== 0 || r.stopped) {
    throw new AuthError(`credential helper ${bin} (configured in ${opts.configuredIn}) could not store the login for ${serverUrl} (${r.stopped ?? `exit ${r.exitCode ?? 'by signal'}`})`, {
      code: 'CREDENTIAL_HELPER_FAILED',
      hint: `check that ${bin} works (a locked keychain?), or remove it from credHelpers/credsStore in ${opts.configuredIn}`,
    });
  }
}

/** `erase`: true when the helper forgot a login, false when it held none. */
export async function eraseWithCredentialHelper(name: string, serverUrl: string, opts: HelperRunOptions): Promise<boolean> {
  const r = await runHelper(name, 'erase', serverUrl, opts);
  if (r.exitCode === 0 && !r.stopped) return true;
  if (/credentials not found/i.test(r.stdout) || /credentials not found/i.test(r.stderr)) return false;
  throw new AuthError(`credential helper ${helperBinary(name)} (configured in ${opts.configuredIn}) could not erase the login for ${serverUrl} (${r.stopped ?? `exit ${r.exitCode ?? 'by signal'}`})`, {
    code: 'CREDENTIAL_HELPER_FAILED',
    hint: `run "echo ${serverUrl} | ${helperBinary(name)} erase" by hand to see its complaint`,
  });
}

/** Run a helper verb; a missing or unstartable helper is an AuthError naming where it was configured. */
async function runHelper(name: string, verb: 'store' | 'erase', input: string, opts: HelperRunOptions): Promise<ProcessResult> {
  const bin = helperBinary(name);
  if (!NAME_RE.test(name)) {
    throw new AuthError(`credential helper name ${JSON.stringify(name)} in ${opts.configuredIn} is not a plain name`, { code: 'CREDENTIAL_HELPER_INVALID' });
  }
  try {
    return await runProcess(bin, [verb], { env: opts.env, input, timeoutMs: opts.timeoutMs, maxOutputBytes: opts.maxOutputBytes, signal: opts.signal });
  } catch (e) {
    if (e instanceof BinaryNotFoundError) {
      throw new AuthError(`credential helper ${bin} (configured in ${opts.configuredIn}) is not installed or not on PATH`, {
        code: 'CREDENTIAL_HELPER_MISSING',
        hint: `install ${bin} somewhere on PATH, or remove it from credHelpers/credsStore in ${opts.configuredIn}`,
      });
    }
    throw e;
  }
}
