// The registry flags whose value may be left out, normalized before node's parseArgs sees them.
// Kept apart from registry-flags.ts so main.ts can use it without loading the registry client.
import { existsSync } from 'node:fs';

/** A value the old `--insecure HOST[:PORT]` spelling gave: host-shaped, and not a file or folder the command takes. */
function isHostValue(v: string | undefined): v is string {
  if (v === undefined || v.startsWith('-')) return false;
  if (!/^(\[[0-9a-fA-F:]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)(:\d+)?$/.test(v)) return false;
  return !/\.(tar|ya?ml|json|tgz)$/i.test(v) && !existsSync(v);
}

/**
 * `--insecure` and `--plain-http` take an optional value (crane's bare `--insecure`, oras'
 * `--plain-http`; `--insecure=HOST` per host), which node's parseArgs cannot express: a bare one
 * becomes `=*` (every registry). `--insecure HOST`, the spelling before, stays a value when the next
 * word looks like a host and is no file. Words after `--` belong to another program.
 */
export function preprocessRegistryArgs(args: readonly string[]): string[] {
  return preprocessOptionalValues(args, new Set(['--insecure', '--plain-http']), (_flag, next) => (isHostValue(next) ? next : undefined), () => '*');
}

/**
 * The one way a flag with an optional value is spelled for parseArgs: `FLAG VALUE` becomes
 * `FLAG=VALUE` when `valueOf` takes the next word as its value, else `FLAG=` + `bare(FLAG)`.
 * `FLAG=VALUE` passes as it is; words after `--` belong to another program.
 */
export function preprocessOptionalValues(
  args: readonly string[],
  flags: ReadonlySet<string>,
  valueOf: (flag: string, next: string | undefined) => string | undefined,
  bare: (flag: string) => string,
): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (!flags.has(a)) {
      out.push(a);
      continue;
    }
    const value = valueOf(a, args[i + 1]);
    if (value !== undefined) {
      out.push(`${a}=${value}`);
      i++;
    } else out.push(`${a}=${bare(a)}`);
  }
  return out;
}
