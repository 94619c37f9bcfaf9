// undici's Agent and `request`, without its index module. The index loads everything undici has
// (fetch, WebSocket, mocks, cache stores, interceptors): ~0.05 s of every command's start-up, for
// two names. These are the files the index itself takes them from; package-lock pins the version,
// and every registry and chart test runs through here, so a moved file fails the suite at once.
import { createRequire } from 'node:module';
import type { Agent as AgentClass, Dispatcher, Pool as PoolClass, ProxyAgent as ProxyAgentClass } from 'undici';
import { WatchedHandler, type ResponseWatchSpec } from './undici-watch.ts';

const require = createRequire(import.meta.url);
/** undici's Dispatcher base class (EventEmitter + the request API); for wrappers of a dispatcher. */
export const DispatcherClass = require('undici/lib/dispatcher/dispatcher.js') as { prototype: object };
// What the index does: the request/stream/pipeline/… API methods live on every dispatcher.
Object.assign(DispatcherClass.prototype, require('undici/lib/api/index.js') as object);

export const Agent = require('undici/lib/dispatcher/agent.js') as typeof AgentClass;
export type Agent = AgentClass;

/**
 * undici's Pool and ProxyAgent, loaded on first use: only a run that goes through a forward
 * proxy pays for them (ProxyAgent brings its SOCKS code along).
 */
export function proxyClasses(): { Pool: typeof PoolClass; ProxyAgent: typeof ProxyAgentClass } {
  return {
    Pool: require('undici/lib/dispatcher/pool.js') as typeof PoolClass,
    ProxyAgent: require('undici/lib/dispatcher/proxy-agent.js') as typeof ProxyAgentClass,
  };
}
export type { Dispatcher };

type RequestApi = (this: Pick<Dispatcher, 'dispatch'>, opts: Dispatcher.RequestOptions) => Promise<Dispatcher.ResponseData>;
const requestApi = (require('undici/lib/api/index.js') as { request: RequestApi }).request;

/**
 * undici's `request(url, { dispatcher, … })`: an absolute URL through the given dispatcher. With
 * `watch`, the response body is watched for stalls and trickles (undici-watch.ts): `request`'s
 * handler is wrapped on its way to the dispatcher.
 */
export async function request(
  url: string | URL,
  opts: Omit<Dispatcher.RequestOptions, 'origin' | 'path' | 'method'> & { dispatcher: Dispatcher; method?: Dispatcher.HttpMethod; watch?: ResponseWatchSpec },
): Promise<Dispatcher.ResponseData> {
  const u = typeof url === 'string' ? new URL(url) : url;
  const { dispatcher, watch, ...rest } = opts;
  const options = { ...rest, origin: u.origin, path: `${u.pathname}${u.search}`, method: rest.method ?? 'GET' };
  if (watch === undefined) return await dispatcher.request(options);
  const watching = { dispatch: (o: Dispatcher.DispatchOptions, handler: Dispatcher.DispatchHandler) => dispatcher.dispatch(o, new WatchedHandler(handler, watch) as never) };
  return await requestApi.call(watching, options);
}
