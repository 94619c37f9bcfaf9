// Shell completion scripts, generated from the command table so they never fall behind it: the
// commands, each command's flags, bundle files (*.tar, split volumes) where a command takes
// bundles, and files after a flag that takes a value.
import type { Command } from './commands/types.ts';

export const SHELLS = ['bash', 'zsh', 'fish'] as const;
export type Shell = (typeof SHELLS)[number];

/** Commands whose arguments are bundles (the rest take charts, folders or files). */
const BUNDLE_COMMANDS = new Set(['verify', 'inspect', 'push', 'serve', 'export', 'extract', 'mirrors-config', 'repair']);
/** Flags whose value is a bundle. */
const BUNDLE_FLAGS = new Set(['base', 'since', 'bundle']);

type Described = Pick<Command, 'name' | 'summary' | 'options'>;

interface Flags {
  all: string[];
  valued: string[];
  bundle: string[];
}

function flagsOf(c: Described): Flags {
  const all = ['--help', '-h', '--json', '--quiet', '-q'];
  const valued: string[] = [];
  const bundle: string[] = [];
  for (const [name, o] of Object.entries(c.options).sort(([a], [b]) => a.localeCompare(b))) {
    const spellings = [`--${name}`, ...(o.short ? [`-${o.short}`] : [])];
    all.push(...spellings);
    if (o.type === 'string') (BUNDLE_FLAGS.has(name) ? bundle : valued).push(...spellings);
  }
  return { all, valued, bundle };
}

const word = (s: string): string => s.replace(/[^A-Za-z0-9_-]/g, '_');

export function completionScript(shell: Shell, commands: readonly Described[]): string {
  if (shell === 'fish') return fish(commands);
  const bash = bashScript(commands);
  // zsh runs the bash function through its bash-compatible layer (bashcompinit).
  return shell === 'zsh' ? `#compdef airlock\n# zsh completion for airlock: source <(airlock completion zsh)\nautoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n${bash}` : bash;
}

function bashScript(commands: readonly Described[]): string {
  const names = [...commands.map((c) => c.name), 'help'].join(' ');
  const cases = commands.filter((c) => c.name !== 'completion').map((c) => {
    const f = flagsOf(c);
    return `    ${c.name}) flags="${f.all.join(' ')}"; valued="${f.valued.join(' ')}"; bundleflags="${f.bundle.join(' ')}"; bundles=${BUNDLE_COMMANDS.has(c.name) ? 1 : 0} ;;`;
  });
  return `# bash completion for airlock: source <(airlock completion bash)
_airlock_bundles() {
  local IFS=$'\\n'
  compopt -o filenames 2>/dev/null
  COMPREPLY=( $(compgen -f -X '!*.tar' -- "$1") $(compgen -f -X '!*.tar.[0-9][0-9][0-9]' -- "$1") $(compgen -d -- "$1") )
}
_airlock() {
  local cur="\${COMP_WORDS[COMP_CWORD]}" prev="\${COMP_WORDS[COMP_CWORD-1]}"
  local commands="${names}"
  COMPREPLY=()
  if [[ $COMP_CWORD -eq 1 ]]; then
    COMPREPLY=( $(compgen -W "$commands" -- "$cur") )
    return 0
  fi
  local flags="" valued="" bundleflags="" bundles=0
  case "\${COMP_WORDS[1]}" in
    help) [[ $COMP_CWORD -eq 2 ]] && COMPREPLY=( $(compgen -W "$commands" -- "$cur") ); return 0 ;;
    completion) [[ $COMP_CWORD -eq 2 ]] && COMPREPLY=( $(compgen -W "bash zsh fish" -- "$cur") ); return 0 ;;
${cases.join('\n')}
    *) return 0 ;;
  esac
  if [[ " $bundleflags " == *" $prev "* ]]; then _airlock_bundles "$cur"; return 0; fi
  if [[ " $valued " == *" $prev "* ]]; then
    compopt -o filenames 2>/dev/null
    COMPREPLY=( $(compgen -f -- "$cur") )
    return 0
  fi
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$flags" -- "$cur") )
    return 0
  fi
  if [[ $bundles -eq 1 ]]; then _airlock_bundles "$cur"; return 0; fi
  compopt -o filenames 2>/dev/null
  COMPREPLY=( $(compgen -f -- "$cur") )
}
complete -F _airlock airlock
`;
}

function fish(commands: readonly Described[]): string {
  const esc = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
  const lines = [
    '# fish completion for airlock: airlock completion fish | source',
    'complete -c airlock -e',
    'complete -c airlock -f',
    `complete -c airlock -n '__fish_use_subcommand' -a help -d 'show a command\\'s options'`,
    `complete -c airlock -n '__fish_seen_subcommand_from help' -a ${esc(commands.map((c) => c.name).join(' '))}`,
    `complete -c airlock -n '__fish_seen_subcommand_from completion' -a 'bash zsh fish'`,
  ];
  for (const c of commands) {
    lines.push(`complete -c airlock -n '__fish_use_subcommand' -a ${c.name} -d ${esc(c.summary)}`);
    const when = `-n '__fish_seen_subcommand_from ${c.name}'`;
    lines.push(`complete -c airlock ${when} -l json`, `complete -c airlock ${when} -s q -l quiet`, `complete -c airlock ${when} -s h -l help`);
    for (const [name, o] of Object.entries(c.options).sort(([a], [b]) => a.localeCompare(b))) {
      const short = o.short ? ` -s ${o.short}` : '';
      const value = o.type !== 'string' ? '' : BUNDLE_FLAGS.has(name) ? " -r -k -a '(__fish_complete_suffix .tar)'" : ' -r -F';
      lines.push(`complete -c airlock ${when} -l ${word(name)}${short}${value}`);
    }
    if (BUNDLE_COMMANDS.has(c.name)) lines.push(`complete -c airlock ${when} -k -a '(__fish_complete_suffix .tar)'`);
    else if (c.name !== 'completion') lines.push(`complete -c airlock ${when} -F`);
  }
  return `${lines.join('\n')}\n`;
}
