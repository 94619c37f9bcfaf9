// Alertmanager receivers that need no URL (pure): a `pagerduty_configs` entry with only a routing
// key still posts to events.pagerduty.com, Alertmanager's default, and so do Opsgenie, VictorOps,
// Pushover, Telegram, Webex and WeChat entries. Each such entry is an endpoint, unless it names its
// own URL or the config's `global` section overrides the default (that URL is found by itself).
// Read from Alertmanager configs in Secrets and ConfigMaps (snake_case) and from
// AlertmanagerConfig resources (camelCase).
import type { Occurrence } from './scan.ts';

export interface ReceiverDefault {
  /** The receiver list: `pagerduty_configs` (config file) and `pagerdutyConfigs` (AlertmanagerConfig). */
  list: string[];
  /** Keys of an entry that name its own endpoint. */
  urlKeys: string[];
  /** The `global` key that overrides the default for every entry of the config. */
  globalKey?: string;
  host: string;
}

export const RECEIVER_DEFAULTS: ReceiverDefault[] = [
  { list: ['pagerduty_configs', 'pagerdutyConfigs'], urlKeys: ['url'], globalKey: 'pagerduty_url', host: 'events.pagerduty.com' },
  { list: ['opsgenie_configs', 'opsgenieConfigs'], urlKeys: ['api_url', 'apiURL'], globalKey: 'opsgenie_api_url', host: 'api.opsgenie.com' },
  { list: ['victorops_configs', 'victoropsConfigs'], urlKeys: ['api_url', 'apiUrl'], globalKey: 'victorops_api_url', host: 'alert.victorops.com' },
  { list: ['pushover_configs', 'pushoverConfigs'], urlKeys: ['url'], host: 'api.pushover.net' },
  { list: ['telegram_configs', 'telegramConfigs'], urlKeys: ['api_url', 'apiURL'], globalKey: 'telegram_api_url', host: 'api.telegram.org' },
  { list: ['webex_configs', 'webexConfigs'], urlKeys: ['api_url', 'apiURL'], globalKey: 'webex_api_url', host: 'webexapis.com' },
  { list: ['wechat_configs', 'wechatConfigs'], urlKeys: ['api_url', 'apiURL'], globalKey: 'wechat_api_url', host: 'qyapi.weixin.qq.com' },
];

export interface ImpliedReceiver {
  host: string;
  resource: string;
  origin?: string;
  /** The entry: `data["alertmanager.yaml"].receivers[0].pagerduty_configs[0]`. */
  path: string;
  /** `pagerduty_configs`, for what the finding shows. */
  list: string;
}

/** `.pagerduty_configs[0].routing_key`: a list entry and the first key under it. */
const ENTRY = /(?:^|\.)([A-Za-z_]+)\[[0-9]+\](?=\.([A-Za-z_][A-Za-z0-9_]*))/g;
const GLOBAL = /^(.*?)(?:^|\.)global\.([A-Za-z_]+)$/;

/** Receiver entries that leave their endpoint at Alertmanager's public default. */
export function impliedReceivers(occurrences: readonly Occurrence[]): ImpliedReceiver[] {
  // Per entry: the keys it sets. Per resource and config file: the `global` keys it sets.
  const entries = new Map<string, { rule: ReceiverDefault; keys: Set<string>; occ: Occurrence; path: string; list: string }>();
  const globals = new Set<string>();
  for (const occ of occurrences) {
    const g = GLOBAL.exec(occ.path);
    if (g) globals.add(`${occ.resource}\u0000${g[1]}\u0000${g[2]}`);
    for (const m of occ.path.matchAll(ENTRY)) {
      const rule = RECEIVER_DEFAULTS.find((r) => r.list.includes(m[1]!));
      if (rule === undefined) continue;
      const path = occ.path.slice(0, m.index + m[0].length);
      const key = `${occ.resource}\u0000${path}`;
      const e = entries.get(key) ?? { rule, keys: new Set<string>(), occ, path, list: m[1]! };
      e.keys.add(m[2]!);
      entries.set(key, e);
      break;
    }
  }
  const out: ImpliedReceiver[] = [];
  for (const e of entries.values()) {
    if (e.rule.urlKeys.some((k) => e.keys.has(k))) continue;
    // The config file the entry stands in: everything before `receivers[`.
    const file = e.path.slice(0, Math.max(0, e.path.search(/(^|\.)receivers\[/)));
    if (e.rule.globalKey !== undefined && globals.has(`${e.occ.resource}\u0000${file}\u0000${e.rule.globalKey}`)) continue;
    out.push({ host: e.rule.host, resource: e.occ.resource, ...(e.occ.origin !== undefined ? { origin: e.occ.origin } : {}), path: e.path, list: e.list });
  }
  return out;
}
