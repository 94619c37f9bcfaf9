// WWW-Authenticate parsing (RFC 7235 §4.1), pure and total: any string gives a Challenge[] and
// never throws, because the header comes from whatever server we talk to.
//
//   WWW-Authenticate = 1#challenge
//   challenge        = auth-scheme [ 1*SP ( token68 / #auth-param ) ]
//   auth-param       = token BWS "=" BWS ( token / quoted-string )
//
// Several challenges share one comma-separated list, so a comma alone does not end a challenge:
// a new one starts where a token is NOT followed by "=". Deviations, all on the lenient side,
// because real registries send them: unquoted values may hold any character except "," and
// whitespace (realm=https://host/token), an unterminated quoted string runs to the end, and a
// token68 value (`Basic abc==`) is skipped since no registry flow uses it.

export interface Challenge {
  /** Lower-case scheme: 'basic', 'bearer', … */
  scheme: string;
  /** Parameter names lower-cased (they are case-insensitive); values as sent, unescaped. */
  params: Record<string, string>;
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const WS = /[ \t\r\n]/;

function isTchar(c: string | undefined): boolean {
  return c !== undefined && TCHAR.test(c);
}

export function parseWwwAuthenticate(header: string): Challenge[] {
  const s = typeof header === 'string' ? header : '';
  const out: Challenge[] = [];
  let i = 0;

  const skipWs = () => {
    while (i < s.length && WS.test(s[i]!)) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (isTchar(s[i])) i++;
    return s.slice(start, i);
  };
  const readQuoted = (): string => {
    i++; // opening quote
    let v = '';
    while (i < s.length) {
      const c = s[i]!;
      if (c === '\\' && i + 1 < s.length) {
        v += s[i + 1];
        i += 2;
      } else if (c === '"') {
        i++;
        return v;
      } else {
        v += c;
        i++;
      }
    }
    return v;
  };
  const readBareValue = (): string => {
    const start = i;
    while (i < s.length && s[i] !== ',' && !WS.test(s[i]!)) i++;
    return s.slice(start, i);
  };
  /** Skip what cannot be used up to the next list comma, stepping over quoted strings whole. */
  const skipItem = () => {
    while (i < s.length && s[i] !== ',') {
      if (s[i] === '"') readQuoted();
      else i++;
    }
  };
  /** `token BWS "=" BWS` not followed by another "=" (that would be token68 padding). */
  const atParam = (): boolean => {
    let j = i;
    while (isTchar(s[j])) j++;
    if (j === i) return false;
    while (j < s.length && WS.test(s[j]!)) j++;
    return s[j] === '=' && s[j + 1] !== '=';
  };

  while (i < s.length) {
    skipWs();
    if (i >= s.length) break;
    if (s[i] === '"') {
      readQuoted(); // a stray quoted string may hold commas; step over it whole
      continue;
    }
    if (!isTchar(s[i])) {
      i++; // a list comma, or junk between challenges
      continue;
    }
    const scheme = readToken();
    if (i < s.length && s[i] !== ',' && !WS.test(s[i]!)) {
      // `Bearer="x"` or `Basic"x"`: not a challenge we can read; drop the whole list item.
      skipItem();
      continue;
    }
    const params: Record<string, string> = {};
    out.push({ scheme: scheme.toLowerCase(), params });

    let commaSeen = false;
    for (;;) {
      skipWs();
      while (s[i] === ',') {
        commaSeen = true;
        i++;
        skipWs();
      }
      if (i >= s.length) break;
      if (atParam()) {
        const name = readToken().toLowerCase();
        skipWs();
        i++; // "="
        skipWs();
        const value = s[i] === '"' ? readQuoted() : readBareValue();
        // First one wins (RFC 7235 allows each name once); `__proto__` would not be stored as data.
        if (!Object.hasOwn(params, name) && name !== '__proto__') params[name] = value;
        skipWs();
        if (i < s.length && s[i] !== ',') skipItem(); // `realm="a"b`: drop the tail, keep the value
        continue;
      }
      if (isTchar(s[i]) || s[i] === '/') {
        if (commaSeen || Object.keys(params).length > 0) break; // the next challenge's scheme
        // token68 right after the scheme (`Basic dXNlcg==`): no registry flow uses it; skip it.
        while (i < s.length && /[A-Za-z0-9\-._~+/]/.test(s[i]!)) i++;
        while (s[i] === '=') i++;
        skipItem();
        continue;
      }
      skipItem(); // a stray quote or "=" where a parameter should start
    }
  }
  return out;
}
