// The one redactor: every token, password and signature passes through here before it reaches a
// log, an error message or a report. Secrets turn up in every shape: a realm URL with
// ?access_token=, a token server's JSON echo, an Authorization header, a presigned storage
// redirect, an upload URL carrying HMAC state, a connection string in a chart's values.
// Pure: no I/O.

/** What a secret is replaced with, everywhere. */
export const REDACTED = 'REDACTED';

/**
 * Names whose values are secrets wherever they appear: query strings, form bodies, JSON fields and
 * HTTP headers. Authorization headers are handled on their own, so that the scheme stays visible.
 */
const SECRET_NAMES = [
  'access_token', 'refresh_token', 'id_token', 'token', 'registrytoken', 'registry_token', 'identitytoken',
  'identity_token', 'password', 'passwd', 'secret', 'client_secret', 'auth', 'x-amz-security-token',
  'x-amz-signature', 'x-goog-signature', 'signature', 'sig', 'x-registry-auth', 'cookie', 'set-cookie',
];
const AUTHORIZATION_HEADERS = ['authorization', 'proxy-authorization'];
const SECRET_HEADERS = new Set([...AUTHORIZATION_HEADERS, ...SECRET_NAMES]);
const NAMES = SECRET_NAMES.join('|');

/** Query parameters whose values are protocol data, never secrets; redactUrl hides every other value. */
const SAFE_QUERY_PARAMS = new Set(['digest', 'mount', 'from', 'n', 'last', 'ns', 'service', 'scope', 'artifactType']);

const RULES: [RegExp, string | ((...m: string[]) => string)][] = [
  // Authorization / Proxy-Authorization header values, whatever the scheme.
  [
    new RegExp(`\\b((?:${AUTHORIZATION_HEADERS.join('|')})["']?\\s*[:=]\\s*["']?)([A-Za-z][\\w-]*\\s+)?[^\\s"',;]+`, 'gi'),
    (_m, pre, scheme) => `${pre}${scheme ?? ''}${REDACTED}`,
  ],
  // Scheme + credentials anywhere else (`Bearer eyJ…`, `Basic dXNlcjpw…`). Not a challenge's
  // `Bearer realm="…"`, and not prose (`Basic credentials`): a credential has 8+ characters with
  // a digit or one of +/=._~- in it.
  [
    new RegExp(`\\b(Bearer|Basic)(\\s+)(?!${REDACTED}\\b)(?![\\w-]+\\s*=\\s*["\\w])(?=[A-Za-z0-9\\-._~+/]*[0-9+/=._~-])[A-Za-z0-9\\-._~+/]{8,}=*`, 'gi'),
    (_m, scheme, ws) => `${scheme}${ws}${REDACTED}`,
  ],
  // JSON string values under secret names: "password":"…", "Secret": "…".
  [new RegExp(`("(?:${NAMES})"\\s*:\\s*")((?:[^"\\\\]|\\\\.)*)(")`, 'gi'), (_m, pre, _v, post) => `${pre}${REDACTED}${post}`],
  // Query strings and form bodies: access_token=…&, password=….
  [new RegExp(`([?&;\\s]|^)(${NAMES})=[^&\\s#"']*`, 'gi'), (_m, pre, name) => `${pre}${name}=${REDACTED}`],
  // userinfo in URLs: https://user:pass@host → https://user:REDACTED@host.
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*):[^\s/@]*@/gi, (_m, pre) => `${pre}:${REDACTED}@`],
  // Bare JWTs (three base64url parts, header starting with {" = eyJ) wherever they appear.
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, REDACTED],
];

/** Replace secrets in free text (Authorization values, tokens, passwords, `access_token=` in URLs) with REDACTED. */
export function redactSecrets(text: string): string {
  let out = String(text);
  for (const [re, replacement] of RULES) {
    out = typeof replacement === 'string' ? out.replace(re, replacement) : out.replace(re, replacement as (...m: string[]) => string);
  }
  return out;
}

/**
 * Free text from a peer or a lower layer (error details a registry echoes): URL userinfo goes
 * whole, then redactSecrets, then each of `secrets` (values the caller knows, 4+ characters).
 */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = redactSecrets(text.replace(/\b(https?:\/\/)[^\s/@:]+:[^\s/@]+@/gi, '$1'));
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join(REDACTED);
  return out;
}

/**
 * A URL safe to show: no user:password, and the value of every query parameter that is not known
 * to be harmless replaced (upload `_state`, `X-Amz-Signature`, `sig`, `token`, …). A bare origin
 * is shown as written (`https://charts.example.com`, no trailing slash). Unparseable input is
 * reduced to a placeholder rather than echoed.
 */
export function redactUrl(input: string | URL): string {
  let url: URL;
  try {
    url = new URL(typeof input === 'string' ? input : input.href);
  } catch {
    return '<unparseable URL>';
  }
  url.username = '';
  url.password = '';
  if (url.search !== '') {
    const parts = url.search
      .slice(1)
      .split('&')
      .filter((p) => p !== '')
      .map((p) => {
        const eq = p.indexOf('=');
        const name = eq < 0 ? p : p.slice(0, eq);
        let decoded = name;
        try {
          decoded = decodeURIComponent(name.replace(/\+/g, ' '));
        } catch {
          // keep the raw name; it is still redacted below unless safe
        }
        return eq < 0 || SAFE_QUERY_PARAMS.has(decoded) ? p : `${name}=${REDACTED}`;
      });
    url.search = parts.length === 0 ? '' : `?${parts.join('&')}`;
  }
  const href = url.href;
  return url.pathname === '/' && url.search === '' && url.hash === '' && href.endsWith('/') ? href.slice(0, -1) : href;
}

/** A copy of `headers` with credential-bearing values replaced. */
export function redactHeaders(headers: Record<string, string | string[] | undefined>): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = SECRET_HEADERS.has(k.toLowerCase()) && v !== undefined ? REDACTED : v;
  return out;
}
