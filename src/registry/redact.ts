// Everything the registry client puts into an error or a log goes through here first: upload
// URLs carry HMAC state, storage redirects carry presigned signatures, and Authorization
// headers carry passwords and tokens. None of that may reach a terminal or a CI log.

import { redactSecrets } from './auth/redact.ts';

const REDACTED = '[REDACTED]';

/** Query parameters whose values are protocol data, never secrets; everything else is hidden. */
const SAFE_QUERY_PARAMS = new Set(['digest', 'mount', 'from', 'n', 'last', 'ns', 'service', 'scope', 'artifactType']);

const SECRET_HEADERS = new Set([
  'authorization',
  'proxy-authorization',
  'cookie',
  'set-cookie',
  'x-registry-auth',
  'x-amz-security-token',
  'x-goog-signature',
]);

/**
 * A URL safe to show: no user:password, and the value of every query parameter that is not known
 * to be harmless replaced (upload `_state`, `X-Amz-Signature`, `sig`, `token`, …). Unparseable input
 * is reduced to a placeholder rather than echoed.
 */
export function redactUrl(input: string | URL): string {
  let url: URL;
  try {
    url = new URL(typeof input === 'string' ? input : input.href);
  } catch {
    return '<unparseable URL>';
  }
  if (url.username !== '' || url.password !== '') {
    url.username = '';
    url.password = '';
  }
  if (url.search === '') return url.href;
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
  return url.href;
}

/** A copy of `headers` with credential-bearing values replaced. */
export function redactHeaders(
  headers: Record<string, string | string[] | undefined>,
): Record<string, string | string[] | undefined> {
  const out: Record<string, string | string[] | undefined> = {};
  for (const [k, v] of Object.entries(headers)) out[k] = SECRET_HEADERS.has(k.toLowerCase()) && v !== undefined ? REDACTED : v;
  return out;
}

/**
 * Hide credentials that may be embedded in free text (error details echoed by a registry, messages
 * of lower layers): URL userinfo is dropped whole, then the auth module's one secret redactor runs
 * (Bearer/Basic values, JWTs, JSON token fields, query secrets), then any `secrets` given.
 */
export function redactText(text: string, secrets: readonly string[] = []): string {
  let out = redactSecrets(text.replace(/\b(https?:\/\/)[^\s/@:]+:[^\s/@]+@/gi, '$1'));
  for (const s of secrets) if (s.length >= 4) out = out.split(s).join(REDACTED);
  return out;
}
