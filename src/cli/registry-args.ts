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
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--') {
      out.push(...args.slice(i));
      break;
    }
    if (a !== '--insecure' && a !== '--plain-http') {
      out.push(a);
      continue;
    }
    const next = args[i + 1];
    if (isHostValue(next)) {
      out.push(`${a}=${next}`);
      i++;
    } else out.push(`${a}=*`);
  }
  return out;
}
