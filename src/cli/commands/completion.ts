import { ExitCode, UsageError } from '../../core/errors.ts';
import { completionScript, SHELLS, type Shell } from '../completion-script.ts';
import { loadCommands } from './index.ts';
import { defineCommand } from './types.ts';

export const completionCommand = defineCommand({
  name: 'completion',
  summary: 'print a shell completion script (bash, zsh or fish)',
  usage: `Usage: airlock completion bash|zsh|fish

Prints a completion script for the shell: commands, each command's flags, bundle files (*.tar and
split volumes) where a command takes bundles, files after flags that take one.
  bash:  source <(airlock completion bash)      (or save it in /etc/bash_completion.d/airlock)
  zsh:   source <(airlock completion zsh)
  fish:  airlock completion fish | source        (or save it in ~/.config/fish/completions/airlock.fish)`,
  options: {},
  async run({ positionals }) {
    const shell = positionals[0];
    if (positionals.length !== 1 || !SHELLS.includes(shell as Shell)) {
      throw new UsageError(`completion needs one shell: ${SHELLS.join(', ')}${shell === undefined ? '' : ` (got "${positionals.join(' ')}")`}`);
    }
    // Straight to stdout, also with --json or --quiet: the script is the output.
    process.stdout.write(completionScript(shell as Shell, await loadCommands()));
    return ExitCode.ok;
  },
});
