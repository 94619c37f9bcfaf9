// .helmignore, with helm's own semantics (pkg/ignore): Go filepath.Match globs, a trailing "/"
// for directories only, a leading "/" anchors at the chart root, a pattern without "/" matches the
// base name only, "**" is an error, and helm's quirk that a "!" rule ignores whatever it does NOT
// match. The default rule `templates/.?*` is added last, as helm adds it.
import { UsageError } from '../core/errors.ts';

interface Rule {
  raw: string;
  negate: boolean;
  mustDir: boolean;
  re: RegExp;
  /** Match against the base name only (no "/" in the pattern). */
  base: boolean;
}

export interface IgnoreRules {
  /** Is `path` (relative to the chart, "/"-separated) ignored? */
  ignores(path: string, isDir: boolean): boolean;
}

/** Go's filepath.Match pattern as a RegExp over a whole "/"-separated path. */
function globToRegExp(glob: string, what: string): RegExp {
  let re = '';
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]!;
    if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else if (c === '\\') {
      i++;
      if (i >= glob.length) throw badPattern(glob, what);
      re += escapeRe(glob[i]!);
    } else if (c === '[') {
      const end = glob.indexOf(']', i + 2);
      if (end < 0) throw badPattern(glob, what);
      let body = glob.slice(i + 1, end);
      let negated = false;
      if (body.startsWith('^')) {
        negated = true;
        body = body.slice(1);
      }
      if (body === '') throw badPattern(glob, what);
      let cls = '';
      for (let k = 0; k < body.length; k++) {
        const ch = body[k]!;
        if (ch === '\\' && k + 1 < body.length) cls += `\\${body[++k]!}`;
        else cls += ch === '^' || ch === '\\' ? `\\${ch}` : ch;
      }
      re += `[${negated ? '^/' : ''}${cls}]`;
      i = end;
    } else re += escapeRe(c);
  }
  return new RegExp(`^${re}$`);
}

function escapeRe(c: string): string {
  return c.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

function badPattern(p: string, what: string): UsageError {
  return new UsageError(`${what}: .helmignore pattern "${p}" is not a valid glob`, { code: 'CHART_INVALID' });
}

export function parseHelmignore(text: string, what: string): IgnoreRules {
  const rules: Rule[] = [];
  const add = (line: string): void => {
    let rule = line.trim();
    if (rule === '' || rule.startsWith('#')) return;
    if (rule.includes('**')) throw new UsageError(`${what}: .helmignore pattern "${rule}": double-star (**) syntax is not supported by helm`, { code: 'CHART_INVALID' });
    const raw = rule;
    let negate = false;
    let mustDir = false;
    if (rule.startsWith('!')) {
      negate = true;
      rule = rule.slice(1);
    }
    if (rule.endsWith('/')) {
      mustDir = true;
      rule = rule.slice(0, -1);
    }
    let base = false;
    if (rule.startsWith('/')) rule = rule.slice(1);
    else if (!rule.includes('/')) base = true;
    rules.push({ raw, negate, mustDir, re: globToRegExp(rule, what), base });
  };
  for (const line of text.split(/\r?\n/)) add(line);
  add('templates/.?*');
  return {
    ignores(path: string, isDir: boolean): boolean {
      if (path === '' || path === '.' || path === './') return false;
      for (const r of rules) {
        const subject = r.base ? path.slice(path.lastIndexOf('/') + 1) : path;
        if (r.negate) {
          if (r.mustDir && !isDir) return true;
          if (!r.re.test(subject)) return true;
          continue;
        }
        if (r.mustDir && !isDir) continue;
        if (r.re.test(subject)) return true;
      }
      return false;
    },
  };
}
