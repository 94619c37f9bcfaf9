// The audit's rule set (pure data plus the small functions that apply it). Extend it by adding
// rows: a host rule names a category for known hosts (and URL paths); a context rule names one
// from the key a value stands under; a switch rule recognises a phone-home setting that carries no
// URL (`reporting_enabled = true`, `DO_NOT_TRACK=0`); a default-on rule flags software that phones
// home unless a switch turns it off; an implicit rule names the public API a setting implies.
import type { Category, Severity } from './types.ts';

export interface HostRule {
  id: string;
  category: Category;
  /** Matched against the lowercase host. */
  host?: RegExp;
  /** Matched against the URL path (with query), when there is a URL. */
  path?: RegExp;
}

/** First match wins: specific services before broad path shapes. */
export const HOST_RULES: HostRule[] = [
  { id: 'acme-public-ca', category: 'acme', host: /^(acme-v02|acme-staging-v02)\.api\.letsencrypt\.org$|^acme\.zerossl\.com$|^dv\.acme-v02(\.test-)?\.api\.pki\.goog$|^api\.buypass\.com$|^api\.test4\.buypass\.no$|^acme\.ssl\.com$|^acme\.sectigo\.com$|^acme\.digicert\.com$|^acme\.entrust\.net$|^acme\.actalis\.com$/ },
  { id: 'ai-api', category: 'ai-api', host: /^api\.openai\.com$|\.openai\.azure\.com$|^api\.anthropic\.com$|^generativelanguage\.googleapis\.com$|aiplatform\.googleapis\.com$|^api\.cohere\.(ai|com)$|^api\.mistral\.ai$|^api\.groq\.com$|^api\.together\.(xyz|ai)$|^api\.deepseek\.com$|^(api-inference\.|router\.)?huggingface\.co$|^api\.replicate\.com$|^openrouter\.ai$|^api\.perplexity\.ai$|^bedrock-runtime\.[a-z0-9-]+\.amazonaws\.com$|^api\.x\.ai$|^api\.fireworks\.ai$|^api\.voyageai\.com$|^api\.ai21\.com$|^api\.stability\.ai$|^api\.elevenlabs\.io$/ },
  { id: 'oauth-provider', category: 'oauth-oidc', host: /^accounts\.google\.com$|^oauth2\.googleapis\.com$|^openidconnect\.googleapis\.com$|^login\.microsoftonline\.com$|^login\.microsoft\.com$|^login\.windows\.net$|^sts\.windows\.net$|\.b2clogin\.com$|\.okta(preview)?\.com$|\.oktacdn\.com$|\.auth0\.com$|\.onelogin\.com$|^cognito-idp\.[a-z0-9-]+\.amazonaws\.com$|\.amazoncognito\.com$|^appleid\.apple\.com$|^(www\.)?facebook\.com$|^graph\.facebook\.com$|^api\.twitter\.com$|\.pingidentity\.com$|\.jumpcloud\.com$|\.duosecurity\.com$|^slack\.com$/ },
  { id: 'oauth-github', category: 'oauth-oidc', host: /^github\.com$|^gitlab\.com$|^bitbucket\.org$/, path: /^\/(login\/oauth|oauth)(\/|$)/ },
  { id: 'oauth-path', category: 'oauth-oidc', path: /\/(oauth2?|openid-connect|\.well-known\/openid-configuration|o\/oauth2|login\/oauth|connect\/(authorize|token|userinfo)|protocol\/openid-connect|oidc|saml2?)(\/|$|\?)/ },
  // Where alerts are sent (Alertmanager and Grafana receivers): real egress, but no telemetry to turn off.
  { id: 'notification-service', category: 'other', host: /(^|\.)pagerduty\.com$|^api(\.eu)?\.opsgenie\.com$|^alert\.victorops\.com$|^api\.pushover\.net$|^api\.telegram\.org$|^hooks\.slack\.com$|\.webhook\.office\.com$|^(discord|discordapp)\.com$|^webexapis\.com$|^qyapi\.weixin\.qq\.com$|^api\.incident\.io$|^events\.(eu\.)?zenduty\.com$/ },
  { id: 'telemetry-service', category: 'telemetry', host: /^stats\.grafana\.org$|(^|\.)sentry\.io$|^sentry\.[a-z0-9.-]+\.(com|io)$|^api\.segment\.io$|^cdn\.segment\.com$|^api(-js)?\.mixpanel\.com$|google-analytics\.com$|^www\.googletagmanager\.com$|^stats\.g\.doubleclick\.net$|\.datadoghq\.(com|eu)$|^([a-z0-9-]+\.)?ddog-gov\.com$|\.newrelic\.com$|\.nr-data\.net$|(^|\.)honeycomb\.io$|(^|\.)posthog\.com$|\.bugsnag\.com$|(^|\.)rollbar\.com$|^api2?\.amplitude\.com$|\.logz\.io$|\.splunkcloud\.com$|\.loggly\.com$|\.papertrailapp\.com$|(^|\.)scarf\.sh$|^collect\.traefik\.io$|^telemetry\.[a-z0-9.-]+$|^analytics\.[a-z0-9.-]+$|^usage\.[a-z0-9.-]+$|^stats\.[a-z0-9.-]+$|^metrics\.[a-z0-9.-]+\.(com|io|net|org)$|^events\.[a-z0-9.-]+$|^beacon\.[a-z0-9.-]+$|^tracking\.[a-z0-9.-]+$|^heap\.io$|^api\.honeybadger\.io$|\.lightstep\.com$|^otlp\.[a-z0-9.-]+$|\.grafana\.net$|^in\.logs\.betterstack\.com$|\.elastic-cloud\.com$|\.cloud\.es\.io$|^app\.launchdarkly\.com$|^events\.launchdarkly\.com$/ },
  { id: 'update-check', category: 'update-check', host: /^checkpoint-api\.hashicorp\.com$|^update\.traefik\.io$|^(update|updates|upgrade|version|versions|versioncheck|version-check|checkpoint)\.[a-z0-9.-]+$/ },
  { id: 'update-check-path', category: 'update-check', path: /\/(releases\/latest|latest-version|version-check|check-?update|update-check|check-?version)(\/|$|\?)|\/api\/(grafana|plugins)\/versions|\/api\/gnet\/plugins\/versions/ },
  { id: 'registry', category: 'registry', host: /^(registry-1\.|index\.|auth\.|production\.cloudflare\.|registry\.)?docker\.io$|^(hub\.)?docker\.com$|^quay\.io$|^ghcr\.io$|(^|\.)gcr\.io$|(^|\.)pkg\.dev$|^registry\.k8s\.io$|^public\.ecr\.aws$|\.dkr\.ecr\.[a-z0-9-]+\.amazonaws\.com$|^mcr\.microsoft\.com$|\.azurecr\.io$|^registry\.gitlab\.com$|^docker\.elastic\.co$|^nvcr\.io$|^cgr\.dev$|^registry\.access\.redhat\.com$|^registry\.redhat\.io$|^container-registry\.oracle\.com$|^docker\.pkg\.github\.com$|^lscr\.io$|^gallery\.ecr\.aws$|^registry\.opensource\.zalan\.do$|^icr\.io$|^.*\.ocir\.io$/ },
  { id: 'download-host', category: 'download', host: /^objects\.githubusercontent\.com$|^raw\.githubusercontent\.com$|^codeload\.github\.com$|^github\.com$|^gitlab\.com$|^bitbucket\.org$|\.s3[.-]([a-z0-9-]+\.)?amazonaws\.com$|^s3\.amazonaws\.com$|^storage\.googleapis\.com$|^dl\.google\.com$|^releases\.hashicorp\.com$|^get\.helm\.sh$|^dl\.k8s\.io$|^download\.docker\.com$|^get\.docker\.com$|^(deb|security|ftp)\.debian\.org$|^(archive|security|ports)\.ubuntu\.com$|^dl-cdn\.alpinelinux\.org$|^pypi\.org$|^files\.pythonhosted\.org$|^registry\.npmjs\.org$|^registry\.yarnpkg\.com$|^repo1?\.maven\.(apache\.)?org$|^repo\.maven\.apache\.org$|^proxy\.golang\.org$|^sum\.golang\.org$|^(static\.)?crates\.io$|^rubygems\.org$|^cdn\.jsdelivr\.net$|^unpkg\.com$|^cdnjs\.cloudflare\.com$|^fonts\.(googleapis|gstatic)\.com$|^charts\.[a-z0-9.-]+$|^helm\.[a-z0-9.-]+$|^artifacthub\.io$|^(download|downloads|dl|get|mirror|mirrors|releases|packages|repo|cdn)\.[a-z0-9.-]+$|^sourceforge\.net$|^plugins\.jenkins\.io$|^updates\.jenkins(-ci)?\.(io|org)$|^mirrors\.jenkins\.io$/ },
  { id: 'download-path', category: 'download', path: /\/releases\/download\/|\.(tar\.gz|tgz|tar|zip|deb|rpm|apk|jar|whl|gem|exe|msi|dmg|bin|sh|ps1|iso|img|qcow2|gz|xz|bz2|zst)(\?|$)/ },
];

/** When no host rule knows the host: the key path it stood under. First match wins. */
export const CONTEXT_RULES: { id: string; category: Category; key: RegExp }[] = [
  { id: 'acme-context', category: 'acme', key: /acme/i },
  { id: 'oauth-context', category: 'oauth-oidc', key: /oauth|oidc|openid|(^|[^a-z])sso|saml|auth[-_]?url|token[-_]?url|auth[-_]?signin|api_?url.*auth|auth.*api_?url|issuer|jwks|userinfo|authorization_?endpoint|token_?endpoint|client_?id|keycloak|dex/i },
  { id: 'ai-context', category: 'ai-api', key: /openai|anthropic|(^|[^a-z])llm|gpt|claude|gemini|ollama|(^|[^a-z])ai_?(api|endpoint|url|base)|model_?(api|endpoint|url)|embedding|inference|completion/i },
  { id: 'telemetry-context', category: 'telemetry', key: /telemetry|analytics|tracking|tracker|sentry|otlp|otel|opentelemetry|usage|report(ing|er)|beacon|crash|datadog|newrelic|honeycomb|segment|mixpanel|posthog|bugsnag|rollbar|(^|[^a-z])apm|zipkin|jaeger|metrics_?(url|endpoint|host)|statsd|trace/i },
  { id: 'update-context', category: 'update-check', key: /update|upgrade|version_?check|check_?version|new_?version|checkpoint/i },
  { id: 'download-context', category: 'download', key: /download|mirror|repo(sitory)?_?(url|base)|release|artifact|package|plugin_?url|chart_?repo|helm_?repo|cdn|asset|fetch|install/i },
  { id: 'registry-context', category: 'registry', key: /registry|image/i },
];

/** Severity of an external endpoint by category. */
export const CATEGORY_SEVERITY: Record<Category, Severity> = {
  registry: 'high',
  acme: 'high',
  'oauth-oidc': 'high',
  'object-storage': 'high',
  'ai-api': 'high',
  telemetry: 'medium',
  'update-check': 'medium',
  download: 'medium',
  other: 'medium',
  reference: 'info',
};

export const CATEGORY_HINT: Record<Category, string> = {
  registry: 'mirror the image into the internal registry (airlock lock, pack, push) and point the reference there (airlock rewrite)',
  acme: 'use an internal ACME server (e.g. step-ca) or a cert-manager CA/Vault issuer; a public ACME CA cannot be reached from an air-gapped network',
  'oauth-oidc': 'point the login at an internal identity provider (Keycloak, Dex, the company IdP) or disable this OAuth/OIDC provider',
  'object-storage': 'point the storage client at an internal S3-compatible store (MinIO, Ceph RGW) with its endpoint key (regionendpoint, endpoint, s3Url), or use local storage',
  telemetry: 'turn this telemetry off or send it to an internal collector',
  'ai-api': 'disable the AI integration or point it at a model served inside the network',
  download: 'vendor the file into the image or serve it from an internal mirror (artifact repository, package mirror)',
  'update-check': 'turn the update check off; updates arrive through the bundle',
  other: 'replace it with an internal endpoint, or add the domain/CIDR with --internal-domain/--internal-cidr if it is internal',
  reference: 'a link or name for people, not a connection the app makes: nothing to change for an air gap',
};

/** Pick a category for an external endpoint: host rules first, then the key path it stood under. */
export function categorize(host: string, urlPath: string | undefined, keyPath: string): { category: Category; rule: string } {
  const byContext = CONTEXT_RULES.find((r) => r.key.test(keyPath));
  for (const r of HOST_RULES) {
    if (r.host && !r.host.test(host)) continue;
    if (r.path && (urlPath === undefined || !r.path.test(urlPath))) continue;
    if (!r.host && !r.path) continue;
    // A file fetched from a download host under `update.url` is an update check: the key says why.
    if (r.category === 'download' && byContext !== undefined && (byContext.category === 'update-check' || byContext.category === 'telemetry')) break;
    return { category: r.category, rule: r.id };
  }
  if (byContext !== undefined) return { category: byContext.category, rule: byContext.id };
  return { category: 'other', rule: 'external-endpoint' };
}

// --- switches: phone-home settings without a URL ---

export interface SwitchRule {
  id: string;
  category: Category;
  severity: Severity;
  /** Matched against the normalised key path: lowercase, camelCase split, `.`/`-`/` ` as `_`. */
  key: RegExp;
  /** `enables`: a true value phones home. `disables`: a false value does (DO_NOT_TRACK=0). */
  polarity: 'enables' | 'disables';
  /** Where it phones home, when known. */
  host?: string;
  hint: string;
}

export const SWITCH_RULES: SwitchRule[] = [
  { id: 'grafana-reporting', category: 'telemetry', severity: 'medium', key: /(^|_)analytics_reporting_enabled$/, polarity: 'enables', host: 'stats.grafana.org', hint: 'set [analytics] reporting_enabled = false (GF_ANALYTICS_REPORTING_ENABLED=false)' },
  { id: 'grafana-update-check', category: 'update-check', severity: 'medium', key: /(^|_)analytics_check_for_updates$/, polarity: 'enables', host: 'grafana.com', hint: 'set [analytics] check_for_updates = false (GF_ANALYTICS_CHECK_FOR_UPDATES=false)' },
  { id: 'grafana-plugin-update-check', category: 'update-check', severity: 'medium', key: /(^|_)analytics_check_for_plugin_updates$/, polarity: 'enables', host: 'grafana.com', hint: 'set [analytics] check_for_plugin_updates = false (GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES=false)' },
  { id: 'grafana-plugin-key-retrieval', category: 'download', severity: 'medium', key: /(^|_)plugins_public_key_retrieval_disabled$/, polarity: 'disables', host: 'grafana.com', hint: 'set [plugins] public_key_retrieval_disabled = true (GF_PLUGINS_PUBLIC_KEY_RETRIEVAL_DISABLED=true): the key built into Grafana is used' },
  { id: 'grafana-feedback-links', category: 'telemetry', severity: 'low', key: /(^|_)analytics_feedback_links_enabled$/, polarity: 'enables', host: 'grafana.com', hint: 'set [analytics] feedback_links_enabled = false' },
  { id: 'traefik-anonymous-usage', category: 'telemetry', severity: 'medium', key: /send_?anonymous_?usage$/, polarity: 'enables', host: 'collect.traefik.io', hint: 'set global.sendAnonymousUsage=false (--global.sendanonymoususage=false)' },
  { id: 'traefik-version-check', category: 'update-check', severity: 'medium', key: /check_?new_?version$/, polarity: 'enables', host: 'update.traefik.io', hint: 'set global.checkNewVersion=false (--global.checknewversion=false)' },
  { id: 'do-not-track-off', category: 'telemetry', severity: 'medium', key: /(^|_)do_?not_?track$/, polarity: 'disables', hint: 'set DO_NOT_TRACK=1, or leave it out: 0 turns tracking back on' },
  { id: 'update-check-not-disabled', category: 'update-check', severity: 'medium', key: /(^|_)(disable|no|skip)_?(update|version|upgrade)_?(check|checks|checker|notifier|notification)s?$|(^|_)skip_?(db_?|java_?db_?)?update$|(^|_)disable_?heartbeat$|(^|_)checkpoint_disable$|(^|_)(update|version|upgrade)_?(check|checks|notifier)_?(disabled?|off)$/, polarity: 'disables', hint: 'set it to true: the update check is on' },
  { id: 'update-check-enabled', category: 'update-check', severity: 'medium', key: /(^|_)(check_?for_?(plugin_?)?updates?|update_?checks?|enable_?update_?checks?|version_?checks?|upgrade_?checks?|auto_?updates?|check_?updates?|update_?notifier|updates_?check|update_?checker|version_?notifications?|(enable_?)?security_?fix_?alerts?)(_enabled|_enable|_on)?$/, polarity: 'enables', hint: 'turn the update check off; updates arrive through the bundle' },
  { id: 'telemetry-not-disabled', category: 'telemetry', severity: 'medium', key: /(^|_)(disable|no|opt_?out|optout)_?(telemetry|analytics|usage_?stats|usage_?reporting|tracking|metrics_?reporting|crash_?reports?)$|(^|_)(telemetry|analytics|usage_?stats|usage_?reporting|tracking)_?(disabled?|opt_?out|optout|off)$/, polarity: 'disables', hint: 'set it to true/1: telemetry is on while this is false' },
  { id: 'telemetry-enabled', category: 'telemetry', severity: 'medium', key: /(^|_)(telemetry|analytics|usage_?stats|usage_?statistics|usage_?reporting|anonymous_?usage|anonymous_?stats|send_?usage(_?data|_?stats)?|phone_?home|crash_?report(s|ing)?|error_?reporting_?to_?vendor|share_?usage(_?data)?|collect_?usage|report_?usage|usage_?collection|usage_?data_?collection|data_?collection|(enable_?)?diagnostics|call_?home|heartbeat)(_enabled|_enable|_on|_opt_?in|_optin|_active)?$|(^|_)(enable|enabled|allow)_(telemetry|analytics|usage_?stats|usage_?reporting|tracking|phone_?home)$|(^|_)telemetry_opt_?in$/, polarity: 'enables', hint: 'turn the telemetry off' },
];

// --- settings that make the app download something from a public site at start ---

export interface InstallRule {
  id: string;
  /** Matched against the normalised key path, like switch rules. */
  key: RegExp;
  /** When set, the key must stand in a file whose path matches (`[plugins] preinstall` in grafana.ini). */
  file?: RegExp;
  host: string;
  category: Category;
  severity: Severity;
  hint: string;
}

/**
 * Grafana installs the plugins these settings list when it starts: a plain plugin id (with or
 * without a version) comes from grafana.com; a `URL;id` item comes from that URL, which the
 * endpoint scan finds by itself.
 */
const PLUGIN_INSTALL_HINT = 'Grafana downloads these plugins from grafana.com when it starts: bake them into the image (or a volume) and empty the list (GF_INSTALL_PLUGINS, GF_PLUGINS_PREINSTALL, [plugins] preinstall), or give each as URL;id from an internal mirror';

export const INSTALL_RULES: InstallRule[] = [
  { id: 'grafana-plugin-install', key: /(^|_)gf_install_plugins$|(^|_)gf_plugins_preinstall(_sync)?$/, host: 'grafana.com', category: 'download', severity: 'medium', hint: PLUGIN_INSTALL_HINT },
  { id: 'grafana-plugin-install', key: /^plugins_preinstall(_sync)?$/, file: /grafana\.ini/i, host: 'grafana.com', category: 'download', severity: 'medium', hint: PLUGIN_INSTALL_HINT },
];

/** The install rule a setting matches, when its value names at least one item that is no URL. */
export function matchInstall(keyPath: string, value: unknown, path = ''): InstallRule | undefined {
  if (typeof value !== 'string') return undefined;
  const key = normaliseKey(keyPath);
  const rule = INSTALL_RULES.find((r) => r.key.test(key) && (r.file === undefined || r.file.test(path)));
  if (rule === undefined) return undefined;
  const items = value.replace(/^["']|["']$/g, '').split(/[,\n]/).map((i) => i.trim()).filter((i) => i !== '');
  return items.some((i) => !/:\/\//.test(i)) ? rule : undefined;
}

const TRUE = /^(true|yes|on|1|y|enabled?|always)$/i;
const FALSE = /^(false|no|off|0|n|disabled?|never)$/i;

/** `sendAnonymousUsage` → `send_anonymous_usage`; `GF_ANALYTICS_X` → `gf_analytics_x`; `--global.x` → `global_x`. */
export function normaliseKey(path: string): string {
  return path
    .replace(/^-{1,2}/, '')
    .replace(/([a-z0-9])([A-Z])/g, '$1_$2')
    .toLowerCase()
    .replace(/\[[0-9]+\]/g, '')
    .replace(/[^a-z0-9]+/g, '_')
    .replace(/^_+|_+$/g, '');
}

export function truthiness(v: unknown): boolean | undefined {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'number') return v !== 0;
  if (typeof v !== 'string') return undefined;
  const t = v.trim().replace(/^["']|["']$/g, '');
  if (TRUE.test(t)) return true;
  if (FALSE.test(t)) return false;
  return undefined;
}

/** The switch rule a setting matches and whether its value switches phoning home on. */
export function matchSwitch(keyPath: string, value: unknown): { rule: SwitchRule; on: boolean } | undefined {
  const key = normaliseKey(keyPath);
  if (key === '') return undefined;
  for (const rule of SWITCH_RULES) {
    if (!rule.key.test(key)) continue;
    const t = truthiness(value);
    if (t === undefined) return undefined;
    return { rule, on: rule.polarity === 'enables' ? t : !t };
  }
  return undefined;
}

// --- software that phones home unless told not to ---

export interface DefaultOnRule {
  id: string;
  /** Matched against the normalised image reference. */
  image: RegExp;
  /** Custom resources that run the product (`Grafana` of grafana-operator), matched against `apiVersion kind`. */
  resource?: RegExp;
  /** The switch (by rule id) that turns it off when set to a value that is "off". */
  switchRule: string;
  category: Category;
  severity: Severity;
  host: string;
  hint: string;
}

const GRAFANA_IMAGE = /\/grafana\/grafana(-oss|-enterprise)?[:@]/;
const GRAFANA_CR = /^grafana\.integreatly\.org\/[^ ]+ Grafana$/;

/**
 * Every switch of a product that phones home by default has its row: when one is flagged because
 * it was left unset, so are its siblings (Grafana's usage report, version check, plugin update
 * check and signing-key download).
 */
export const DEFAULT_ON_RULES: DefaultOnRule[] = [
  { id: 'grafana-reporting-default', image: GRAFANA_IMAGE, resource: GRAFANA_CR, switchRule: 'grafana-reporting', category: 'telemetry', severity: 'low', host: 'stats.grafana.org', hint: 'Grafana reports usage by default: set [analytics] reporting_enabled = false in grafana.ini or GF_ANALYTICS_REPORTING_ENABLED=false' },
  { id: 'grafana-update-check-default', image: GRAFANA_IMAGE, resource: GRAFANA_CR, switchRule: 'grafana-update-check', category: 'update-check', severity: 'low', host: 'grafana.com', hint: 'Grafana checks for updates by default: set [analytics] check_for_updates = false or GF_ANALYTICS_CHECK_FOR_UPDATES=false' },
  { id: 'grafana-plugin-update-check-default', image: GRAFANA_IMAGE, resource: GRAFANA_CR, switchRule: 'grafana-plugin-update-check', category: 'update-check', severity: 'low', host: 'grafana.com', hint: 'Grafana checks for plugin updates by default: set [analytics] check_for_plugin_updates = false or GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES=false' },
  { id: 'grafana-plugin-key-retrieval-default', image: GRAFANA_IMAGE, resource: GRAFANA_CR, switchRule: 'grafana-plugin-key-retrieval', category: 'download', severity: 'low', host: 'grafana.com', hint: 'Grafana fetches its plugin signing key from grafana.com by default: set [plugins] public_key_retrieval_disabled = true or GF_PLUGINS_PUBLIC_KEY_RETRIEVAL_DISABLED=true'},
  { id: 'loki-reporting-default', image: /\/grafana\/(loki|mimir|tempo)[:@]/, switchRule: 'loki-reporting', category: 'telemetry', severity: 'low', host: 'stats.grafana.org', hint: 'Grafana Loki/Mimir/Tempo report usage by default: set analytics.reporting_enabled: false (-reporting.enabled=false)' },
  { id: 'traefik-version-check-default', image: /\/traefik:|\/library\/traefik:/, switchRule: 'traefik-version-check', category: 'update-check', severity: 'low', host: 'update.traefik.io', hint: 'Traefik checks for new versions by default: set --global.checknewversion=false' },
];

// --- settings that imply a public API without naming its URL ---

export interface ImplicitRule {
  id: string;
  kind: RegExp;
  /** Matched against the resource path with list indexes dropped: `spec.acme.solvers.dns01.cloudflare`. */
  path: RegExp;
  host: string;
  category: Category;
  severity: Severity;
  hint: string;
}

export const IMPLICIT_RULES: ImplicitRule[] = [
  { id: 'grafana-com-dashboard', kind: /^GrafanaDashboard$/, path: /^spec\.grafanaCom$/, host: 'grafana.com', category: 'download', severity: 'medium', hint: 'grafana-operator downloads this dashboard from grafana.com: put its JSON in spec.json (or a ConfigMap) instead' },
  { id: 'acme-dns01-cloudflare', kind: /^(Cluster)?Issuer$/, path: /\.dns01\.cloudflare$/, host: 'api.cloudflare.com', category: 'acme', severity: 'high', hint: 'DNS-01 through Cloudflare needs api.cloudflare.com: use an internal ACME server or a CA issuer' },
  { id: 'acme-dns01-route53', kind: /^(Cluster)?Issuer$/, path: /\.dns01\.route53$/, host: 'route53.amazonaws.com', category: 'acme', severity: 'high', hint: 'DNS-01 through Route 53 needs the AWS API: use an internal ACME server or a CA issuer' },
  { id: 'acme-dns01-clouddns', kind: /^(Cluster)?Issuer$/, path: /\.dns01\.cloudDNS$/, host: 'dns.googleapis.com', category: 'acme', severity: 'high', hint: 'DNS-01 through Google Cloud DNS needs its API: use an internal ACME server or a CA issuer' },
  { id: 'acme-dns01-azuredns', kind: /^(Cluster)?Issuer$/, path: /\.dns01\.azureDNS$/, host: 'management.azure.com', category: 'acme', severity: 'high', hint: 'DNS-01 through Azure DNS needs the Azure API: use an internal ACME server or a CA issuer' },
  { id: 'acme-dns01-digitalocean', kind: /^(Cluster)?Issuer$/, path: /\.dns01\.digitalocean$/, host: 'api.digitalocean.com', category: 'acme', severity: 'high', hint: 'DNS-01 through DigitalOcean needs its API: use an internal ACME server or a CA issuer' },
  { id: 'acme-dns01-akamai', kind: /^(Cluster)?Issuer$/, path: /\.dns01\.akamai$/, host: 'akamaiapis.net', category: 'acme', severity: 'high', hint: 'DNS-01 through Akamai needs its API: use an internal ACME server or a CA issuer' },
];

/**
 * Login-broker connectors (Dex's `connectors[]`, as Argo CD's `dex.config` and Dex's own config
 * carry them) that log in through a public provider when no URL is given: `type: github` without
 * `config.hostName` is github.com, `type: gitlab` without `config.baseURL` is gitlab.com. The host
 * is in no value, so nothing else finds it.
 */
export interface ConnectorDefault {
  type: string;
  host: string;
  /** The config key that points the connector elsewhere (GitHub Enterprise, a GitLab instance); none: always public. */
  override?: string;
}

export const CONNECTOR_DEFAULTS: ConnectorDefault[] = [
  { type: 'github', host: 'github.com', override: 'hostName' },
  { type: 'gitlab', host: 'gitlab.com', override: 'baseURL' },
  { type: 'gitea', host: 'gitea.com', override: 'baseURL' },
  { type: 'bitbucket-cloud', host: 'bitbucket.org' },
  { type: 'google', host: 'accounts.google.com' },
  { type: 'microsoft', host: 'login.microsoftonline.com' },
  { type: 'linkedin', host: 'www.linkedin.com' },
];

// --- object stores that reach a public cloud when no endpoint is named ---

export type CloudProvider = 'aws' | 'gcp' | 'azure';

/**
 * Object-storage clients whose settings name a bucket (or account) but no endpoint: the client
 * then talks to its cloud's public object store, a host that stands in no value. A registry's
 * `storage.s3` without `regionendpoint` is AWS S3; Loki's `common.storage.s3`, Mimir's and Tempo's
 * `s3` blocks, Thanos' `type: S3` without `config.endpoint` too; `gcs` is Google Cloud Storage,
 * `azure` is `<account>.blob.core.windows.net`. Keys are compared lowercase without `_`/`-`.
 */
export interface ObjectStoreDefault {
  id: string;
  provider: CloudProvider;
  service: string;
  /** Block names holding the client's settings, each with the keys one of which it must set to be a storage client. */
  blocks: Record<string, string[]>;
  /** `type:` values of a typed object-store config (Thanos `objstore.yml`: `type: S3` beside `config:`). */
  type: string;
  /** Keys that point the client at another endpoint (then that endpoint is judged as usual). */
  overrides: string[];
}

export const OBJECT_STORE_DEFAULTS: ObjectStoreDefault[] = [
  {
    id: 'object-storage-aws-default',
    provider: 'aws',
    service: 'AWS S3',
    blocks: { s3: ['bucket', 'bucketname', 'bucketnames', 'region', 's3'], aws: ['bucket', 'bucketname', 'bucketnames', 's3'] },
    type: 's3',
    overrides: ['regionendpoint', 'endpoint', 'endpointurl', 's3url', 'url', 'host'],
  },
  {
    id: 'object-storage-gcs-default',
    provider: 'gcp',
    service: 'Google Cloud Storage',
    blocks: { gcs: ['bucket', 'bucketname'] },
    type: 'gcs',
    overrides: ['endpoint', 'endpointurl', 'url', 'host'],
  },
  {
    id: 'object-storage-azure-default',
    provider: 'azure',
    service: 'Azure Blob Storage',
    blocks: { azure: ['accountname', 'storageaccount', 'storageaccountname'] },
    type: 'azure',
    overrides: ['endpoint', 'endpointsuffix', 'realm', 'serviceurl', 'storageaccounturi', 'endpointurl', 'url', 'host'],
  },
];

/**
 * Velero's `BackupStorageLocation` and `VolumeSnapshotLocation` by `spec.provider` (`aws` or
 * `velero.io/aws`): backups go to the cloud's object store unless `spec.config` names an endpoint
 * (`s3Url`, `storageAccountURI`); volume snapshots go through the cloud's compute API, which no
 * setting moves.
 */
export const VELERO_PROVIDERS: Record<CloudProvider, { backupOverride?: string; snapshotHost: (region: string | undefined) => string; snapshotApi: string }> = {
  aws: { backupOverride: 's3Url', snapshotHost: (region) => (region !== undefined ? `ec2.${region}.${awsDomain(region)}` : 'ec2.amazonaws.com'), snapshotApi: 'the EC2 API' },
  gcp: { snapshotHost: () => 'compute.googleapis.com', snapshotApi: 'the Compute Engine API' },
  azure: { backupOverride: 'storageAccountURI', snapshotHost: () => 'management.azure.com', snapshotApi: 'the Azure Resource Manager API' },
};

const AWS_REGION = /^[a-z]{2}(-[a-z]+)+-[0-9]{1,2}$/;

function awsDomain(region: string): string {
  return region.startsWith('cn-') ? 'amazonaws.com.cn' : 'amazonaws.com';
}

/** The public host a provider's object store is reached at: `s3.<region>.amazonaws.com`, `<account>.blob.core.windows.net`. */
export function objectStoreHost(provider: CloudProvider, o: { region?: string | undefined; account?: string | undefined }): string {
  if (provider === 'gcp') return 'storage.googleapis.com';
  if (provider === 'azure') return o.account !== undefined && /^[a-z0-9]{3,24}$/.test(o.account) ? `${o.account}.blob.core.windows.net` : 'blob.core.windows.net';
  return o.region !== undefined && AWS_REGION.test(o.region) ? `s3.${o.region}.${awsDomain(o.region)}` : 's3.amazonaws.com';
}

/** An AWS region name as written in a value, when it is one. */
export function awsRegion(value: unknown): string | undefined {
  const v = typeof value === 'string' ? value.trim().toLowerCase() : '';
  return AWS_REGION.test(v) ? v : undefined;
}
