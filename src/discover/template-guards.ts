// Which values guard each line of a helm template (pure): `{{ if .Values.metrics.enabled }}`,
// `{{ with .Values.metrics }}{{ if .enabled }}`, `{{ else }}` of a `not`. Enough of Go template
// syntax to say which switch a container's `image:` line stands under; it never evaluates anything.

export interface TemplateLine {
  text: string;
  /** Values paths (relative to the chart's values, dotted) the enclosing conditions need on, outermost first. */
  guards: string[];
  /** Inside a `define`/`block`: text of a named template, not rendered where it stands. */
  inDefine: boolean;
  /** Guards from an `if or ...`: any one of them on renders the line. */
  anyOf: string[];
}

interface Frame {
  kind: 'if' | 'with' | 'range' | 'define' | 'other';
  refs: string[];
  /** Refs the condition needs off (`if not .Values.x.enabled`): they guard the `else` branch. */
  negated: string[];
  /** The dot inside a `with .Values.x` block, as a values path. */
  ctx: string | undefined;
  /** An `or` condition: its refs are alternatives. */
  anyOf?: boolean;
}

const ACTION = /\{\{-?\s*([\s\S]*?)\s*-?\}\}/g;
const VALUES_REF = /\$?[A-Za-z0-9_]*\.Values((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)/g;
const RELATIVE_REF = /(^|[\s(])\.([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)/g;
const BUILTINS = /^(Values|Release|Chart|Capabilities|Template|Files)(\.|$)/;

function refsIn(expr: string, ctx: string | undefined): string[] {
  const out: string[] = [];
  for (const m of expr.matchAll(VALUES_REF)) out.push(m[1]!.slice(1));
  if (ctx !== undefined) {
    for (const m of expr.matchAll(RELATIVE_REF)) if (!BUILTINS.test(m[2]!)) out.push(`${ctx}.${m[2]}`);
  }
  return out;
}

/** The arguments of every `not` in `expr`: `not .Values.a.enabled`, `not (eq .Values.mode "x")`. */
function notArguments(expr: string): string[] {
  const out: string[] = [];
  for (const m of expr.matchAll(/(?:^|[\s(])not\s+/g)) {
    let i = m.index! + m[0].length;
    if (expr[i] !== '(') {
      out.push(/^[^\s()]*/.exec(expr.slice(i))![0]);
      continue;
    }
    const start = i;
    let depth = 0;
    for (; i < expr.length; i++) {
      if (expr[i] === '(') depth++;
      else if (expr[i] === ')' && --depth === 0) break;
    }
    out.push(expr.slice(start, i + 1));
  }
  return out;
}

function condition(expr: string, ctx: string | undefined): { refs: string[]; negated: string[] } {
  const negatedWhole = /^\(?\s*not\s/.test(expr);
  const refs = refsIn(expr, ctx);
  if (negatedWhole) return { refs: [], negated: refs };
  // `or (not (eq .Values.mode "x")) (not .Values.cluster.enabled)`: what stands under a `not` is
  // needed off, not on
  const off = new Set(refsIn(notArguments(expr).join(' '), ctx));
  return { refs: refs.filter((r) => !off.has(r)), negated: [] };
}

/** A `with`'s new dot, when it is a plain values path. */
function withContext(expr: string, ctx: string | undefined): string | undefined {
  const m = /^\$?\.Values((?:\.[A-Za-z_][A-Za-z0-9_-]*)+)$/.exec(expr.trim());
  if (m) return m[1]!.slice(1);
  const rel = /^\.([A-Za-z_][A-Za-z0-9_-]*(?:\.[A-Za-z_][A-Za-z0-9_-]*)*)$/.exec(expr.trim());
  return rel && ctx !== undefined && !BUILTINS.test(rel[1]!) ? `${ctx}.${rel[1]}` : undefined;
}

/** Every line of `text` with the values paths its enclosing `if`/`with` blocks need on. */
export function templateLines(text: string): TemplateLine[] {
  const stack: Frame[] = [];
  const lineStarts = [0];
  for (let i = 0; i < text.length; i++) if (text[i] === '\n') lineStarts.push(i + 1);
  const out: TemplateLine[] = [];
  const snapshot = (): { guards: string[]; inDefine: boolean; anyOf: string[] } => ({
    guards: stack.flatMap((f) => f.refs),
    inDefine: stack.some((f) => f.kind === 'define'),
    anyOf: stack.flatMap((f) => (f.anyOf ? f.refs : [])),
  });
  const ctxNow = (): string | undefined => {
    for (let i = stack.length - 1; i >= 0; i--) if (stack[i]!.kind === 'with' || stack[i]!.kind === 'range') return stack[i]!.ctx;
    return undefined;
  };
  const actions = [...text.matchAll(ACTION)];
  let a = 0;
  for (let l = 0; l < lineStarts.length; l++) {
    const start = lineStarts[l]!;
    const end = l + 1 < lineStarts.length ? lineStarts[l + 1]! - 1 : text.length;
    // a line stands under what was open when it began and what it opens itself (`{{ if x }}image: ...`)
    const before = snapshot();
    const seen = new Set(before.guards);
    const anyOf = new Set(before.anyOf);
    let inDefine = before.inDefine;
    for (; a < actions.length && actions[a]!.index! < end; a++) {
      const body = actions[a]![1]!.trim();
      const word = /^(else\s+if|else\s+with|if|with|range|define|block|else|end)\b\s*([\s\S]*)$/.exec(body);
      if (!word) continue;
      const [, kw, rest] = word as unknown as [string, string, string];
      const ctx = ctxNow();
      if (kw === 'if') stack.push({ kind: 'if', ...condition(rest, ctx), ctx, anyOf: /^\(?\s*or\s/.test(rest) });
      else if (kw === 'with') stack.push({ kind: 'with', refs: refsIn(rest, ctx), negated: [], ctx: withContext(rest, ctx) });
      else if (kw === 'range') stack.push({ kind: 'range', refs: [], negated: [], ctx: undefined });
      else if (kw === 'define' || kw === 'block') stack.push({ kind: 'define', refs: [], negated: [], ctx: undefined });
      else if (kw === 'end') stack.pop();
      else if (stack.length > 0) {
        const top = stack[stack.length - 1]!;
        if (kw === 'else') {
          top.refs = top.negated;
          top.negated = [];
          top.anyOf = false;
        } else {
          const expr = rest.replace(/^(if|with)\s+/, '');
          const c = condition(expr, ctx);
          top.refs = c.refs;
          top.negated = c.negated;
          top.anyOf = /^\(?\s*or\s/.test(expr);
        }
      }
      const now = snapshot();
      for (const g of now.guards) seen.add(g);
      for (const g of now.anyOf) anyOf.add(g);
      inDefine ||= now.inDefine;
    }
    out.push({ text: text.slice(start, end), guards: [...seen], inDefine, anyOf: [...anyOf] });
  }
  return out;
}
