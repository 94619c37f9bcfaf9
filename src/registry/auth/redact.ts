// The one redactor every token and password passes through before it reaches a log or an error
// message. It works on free text (headers, URLs, JSON, form bodies) because secrets turn up in
// all of them: a realm URL with ?access_token=, a token server's JSON echo, a credential helper's
// stderr.

export const REDACTED = 'REDACTED';

/** Names whose values are secrets in query strings, form bodies, JSON and `name: value` lines. */
const SECRET_NAMES = [
  'access_token', 'refresh_token', 'id_token', 'token', 'registrytoken', 'registry_token', 'identitytoken',
  'identity_token', 'password', 'passwd', 'secret', 'client_secret', 'auth', 'x-amz-security-token',
  'x-amz-signature', 'signature', 'sig',
].join('|');

const RULES: [RegExp, string | ((...m: string[]) => string)][] = [
  // Authorization / Proxy-Authorization header values, whatever the scheme.
  [/\b((?:proxy-)?authorization["']?\s*[:=]\s*["']?)([A-Za-z][\w-]*\s+)?[^\s"',;]+/gi, (_m, pre, scheme) => `${pre}${scheme ?? ''}${REDACTED}`],
  // Scheme + credentials anywhere else (`Bearer eyJ…`, `Basic dXNlcjpw…`). Not a challenge's
  // `Bearer realm="…"`, and not prose (`Basic credentials`): a credential has 8+ characters with
  // a digit or one of +/=._~- in it.
  [/\b(Bearer|Basic)(\s+)(?!REDACTED\b)(?![\w-]+\s*=\s*["\w])(?=[A-Za-z0-9\-._~+/]*[0-9+/=._~-])[A-Za-z0-9\-._~+/]{8,}=*/gi, (_m, scheme, ws) => `${scheme}${ws}${REDACTED}`],
  // JSON string values under secret names: "password":"…", "Secret": "…".
  [new RegExp(`("(?:${SECRET_NAMES})"\\s*:\\s*")((?:[^"\\\\]|\\\\.)*)(")`, 'gi'), (_m, pre, _v, post) => `${pre}${REDACTED}${post}`],
  // Query strings and form bodies: access_token=…&, password=….
  [new RegExp(`([?&;\\s]|^)(${SECRET_NAMES})=[^&\\s#"']*`, 'gi'), (_m, pre, name) => `${pre}${name}=${REDACTED}`],
  // userinfo in URLs: https://user:pass@host → https://user:REDACTED@host.
  [/\b([a-z][a-z0-9+.-]*:\/\/[^\s/:@]*):[^\s/@]*@/gi, (_m, pre) => `${pre}:${REDACTED}@`],
  // Bare JWTs (three base64url parts, header starting with {" = eyJ) wherever they appear.
  [/\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*/g, REDACTED],
];

/** Replace secrets (Authorization values, tokens, passwords, `access_token=` in URLs) with "REDACTED". */
export function redactSecrets(text: string): string {
  let out = String(text);
  for (const [re, replacement] of RULES) {
    out = typeof replacement === 'string' ? out.replace(re, replacement) : out.replace(re, replacement as (...m: string[]) => string);
  }
  return out;
}
