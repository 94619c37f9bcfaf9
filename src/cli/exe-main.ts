// The single executable's entry (scripts/build-exe.ts bundles from here). The CLI as main.ts is,
// plus the executable's internal entry points: the parts of airlock that the sources start as
// separate Node scripts (the sandbox's helpers) are, in the executable, the executable itself
// started with INTERNAL_ENTRY_ARG and the entry's name (src/util/executable.ts). No top-level
// await: Node runs an executable's main script as CommonJS.
import { ExitCode } from '../core/errors.ts';
import { INTERNAL_ENTRY_ARG } from '../util/executable.ts';
import { main } from './main.ts';

async function run(argv: string[]): Promise<void> {
  if (argv[0] === INTERNAL_ENTRY_ARG) {
    const [, entry, config] = argv;
    if (entry === 'ns-helper') return (await import('../audit/sandbox/ns-helper.ts')).nsHelperMain(config);
    if (entry === 'ns-init') return (await import('../audit/sandbox/ns-init.ts')).nsInitMain(config);
    process.stderr.write(`airlock: unknown internal entry "${entry}"\n`);
    process.exitCode = ExitCode.internal;
    return;
  }
  process.exitCode = await main(argv);
}

void run(process.argv.slice(2));
