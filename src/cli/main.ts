#!/usr/bin/env node
// The CLI's one error boundary: commands throw typed errors; only here do they become messages
// and exit codes (src/core/errors.ts ExitCode).
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AbortedError, AirlockError, ExitCode, RegistryError, UsageError } from '../core/errors.ts';
import { fileErrorFromErrno } from '../util/file-error.ts';
import { redactSecrets } from '../core/redact.ts';
import { TOOL_VERSION } from '../version.ts';
import { Output } from './output.ts';
import { commandNames, commandSummaries, loadCommand, type Command } from './commands/index.ts';
import { preprocessRegistryArgs } from './registry-args.ts';

const GLOBAL_OPTIONS = {
  json: { type: 'boolean', default: false },
  quiet: { type: 'boolean', short: 'q', default: false },
  help: { type: 'boolean', short: 'h', default: false },
} as const satisfies ParseArgsConfig['options'];

async function usage(): Promise<string> {
  const commands = await commandSummaries();
  const width = Math.max(...commands.map((c) => c.name.length));
  return [
    `airlock ${TOOL_VERSION}: carry Kubernetes images into air-gapped networks, verifiably.`,
    '',
    'Usage: airlock COMMAND [options]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    '',
    'Global options: --json (NDJSON events and a JSON result on stdout), -q/--quiet, -h/--help',
    'Run `airlock help COMMAND` (or `airlock COMMAND --help`) for a command\'s options;',
    '`airlock completion bash|zsh|fish` prints a shell completion script.',
  ].join('\n');
}

let outputFailure: NodeJS.ErrnoException | undefined;
const onOutputFailure = new Set<() => void>();
let watching = false;

/**
 * A closed stdout or stderr is an 'error' event on it (EPIPE), which unhandled would crash with a
 * stack trace. Instead the run is stopped as by Ctrl-C (temp files removed) and exits quietly.
 */
function watchOutputStreams(): void {
  if (watching) return;
  watching = true;
  // The failure may be reported after main() has returned its code: it decides at exit.
  process.once('exit', () => {
    if (outputFailure) process.exitCode = outputExit();
  });
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (e: NodeJS.ErrnoException) => {
      outputFailure ??= e;
      process.exitCode = outputExit();
      for (const f of onOutputFailure) f();
    });
  }
}

/**
 * Whoever read our output stopped reading (`airlock inspect --json | head -1`): exit as cat does
 * there, quietly (ExitCode.closedPipe). Any other failure to write the output (a full disk) is the
 * file system's.
 */
function outputExit(): number {
  return outputFailure?.code === 'EPIPE' ? ExitCode.closedPipe : ExitCode.io;
}

export async function main(argv: string[]): Promise<number> {
  watchOutputStreams();
  const [name, ...rest] = argv;
  // `airlock help COMMAND` is `airlock COMMAND --help`, as with git, helm and docker.
  if (name === 'help' && rest.length > 0) return await main([rest[0]!, '--help']);
  if (name === undefined || name === '-h' || name === '--help' || name === 'help') {
    process.stdout.write(`${await usage()}\n`);
    return name === undefined ? ExitCode.usage : ExitCode.ok;
  }
  if (name === '--version') return await main(['version', ...rest]);
  const command: Command | undefined = await loadCommand(name);
  // Output mode is needed before parsing (a parse error is reported in it); flags after `--` belong
  // to a wrapped command (airlock sandbox -- cmd --json), not to airlock.
  const own = rest.includes('--') ? rest.slice(0, rest.indexOf('--')) : rest;
  const out = new Output({ json: own.includes('--json'), quiet: own.includes('--quiet') || own.includes('-q') });
  const controller = new AbortController();
  const onSignal = (sig: NodeJS.Signals): void => {
    if (controller.signal.aborted) process.exit(ExitCode.interrupted);
    controller.abort(new AbortedError(`interrupted by ${sig}`));
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onOutputGone = (): void => controller.abort(new AbortedError('the output was closed'));
  onOutputFailure.add(onOutputGone);
  try {
    if (!command) throw new UsageError(`unknown command "${name}"`, { hint: `commands: ${commandNames.join(', ')}` });
    let parsed;
    try {
      const args = 'insecure' in command.options ? preprocessRegistryArgs(rest) : rest;
      parsed = parseArgs({ args: command.preprocessArgs ? command.preprocessArgs(args) : args, options: { ...GLOBAL_OPTIONS, ...command.options }, allowPositionals: true, strict: true });
    } catch (e) {
      throw new UsageError(`${name}: ${(e as Error).message}`, { hint: `run \`airlock ${name} --help\`` });
    }
    if (parsed.values.help) {
      process.stdout.write(`${command.usage}\n`);
      return ExitCode.ok;
    }
    const code = (await command.run({ values: parsed.values as Record<string, unknown>, positionals: parsed.positionals, out, signal: controller.signal })) ?? ExitCode.ok;
    return outputFailure ? outputExit() : code;
  } catch (e) {
    out.stop();
    if (outputFailure) {
      if (outputFailure.code !== 'EPIPE') process.stderr.write(`airlock: error: cannot write the output: ${outputFailure.code ?? outputFailure.message}\n`);
      return outputExit();
    }
    return report(e, out, controller.signal);
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    onOutputFailure.delete(onOutputGone);
  }
}

function report(e: unknown, out: Output, signal: AbortSignal): number {
  // A file-system failure no library code put in words is still the user's to fix (a full disk,
  // a read-only folder), not a bug: it is reported with its path and its own exit code.
  const err = signal.aborted && !(e instanceof AirlockError) ? new AbortedError('interrupted', { cause: e }) : (fileErrorFromErrno(e) ?? e);
  if (err instanceof AirlockError) {
    const message = redactSecrets(err.message);
    const registry = err instanceof RegistryError ? { status: err.status, registryCode: err.registryCode } : {};
    out.event({ type: 'error', code: err.code, exitCode: err.exitCode, message, ...registry, ...(err.hint ? { hint: err.hint } : {}) });
    process.stderr.write(`airlock: error: ${message}\n`);
    if (err.hint) process.stderr.write(`  hint: ${err.hint}\n`);
    if (process.env.AIRLOCK_DEBUG && err.cause) process.stderr.write(`  cause: ${redactSecrets(String((err.cause as Error).stack ?? err.cause))}\n`);
    return err.exitCode;
  }
  const message = err instanceof Error ? (process.env.AIRLOCK_DEBUG ? (err.stack ?? err.message) : err.message) : String(err);
  out.event({ type: 'error', code: 'INTERNAL', exitCode: ExitCode.internal, message: redactSecrets(message) });
  process.stderr.write(`airlock: internal error: ${redactSecrets(message)}\n  hint: this is a bug in airlock; rerun with AIRLOCK_DEBUG=1 and report the output\n`);
  return ExitCode.internal;
}

// Run as a script (`node src/cli/main.ts`). Not top-level await: the executable's bundle of this
// module is CommonJS, which has none (src/cli/exe-main.ts is that entry).
if (import.meta.main) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
