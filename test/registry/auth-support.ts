// What the auth tests against a real docker-registry share: the Authenticator's request seam over
// an undici dispatcher, and one raw call that returns the status and parsed challenges.
import { type Dispatcher, request } from 'undici';
import { type AuthRequest, parseWwwAuthenticate } from '../../src/registry/auth/index.ts';

export function authRequest(dispatcher: Dispatcher): AuthRequest {
  return async (url, init) => {
    const res = await request(url, { method: init.method, headers: init.headers, body: init.body, signal: init.signal, dispatcher });
    return { status: res.statusCode, headers: res.headers, body: await res.body.text() };
  };
}

/** `path` is below `baseUrl` unless it is a whole URL (an upload location). */
export async function authCall(dispatcher: Dispatcher, baseUrl: string, method: 'GET' | 'POST' | 'PUT', path: string, header?: string, body?: Buffer) {
  const headers: Record<string, string> = header ? { authorization: header } : {};
  if (body) headers['content-type'] = 'application/octet-stream';
  const res = await request(path.startsWith('http') ? path : `${baseUrl}${path}`, { method, headers, body, dispatcher });
  await res.body.text();
  const www = res.headers['www-authenticate'];
  return {
    status: res.statusCode,
    location: res.headers.location as string | undefined,
    challenges: parseWwwAuthenticate(Array.isArray(www) ? www.join(', ') : (www ?? '')),
  };
}
