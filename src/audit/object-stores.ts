// Object stores that reach a public cloud by default (pure). A storage client configured with a
// bucket (or an account) and no endpoint talks to its cloud's public object store, whose host is in
// no value: a docker distribution registry's `storage.s3` without `regionendpoint` stores every
// blob in AWS S3; Loki's `common.storage.s3`/`storage_config.aws`, Mimir's and Tempo's `s3`
// blocks and Thanos' `type: S3` without `endpoint` do too; `gcs` blocks go to Google Cloud Storage
// and `azure` ones to `<account>.blob.core.windows.net`. Velero's BackupStorageLocation (without
// `config.s3Url`) and VolumeSnapshotLocation name only a provider. Each is a finding unless a key
// points the client elsewhere; that endpoint is then judged where it stands, like any other.
import { joinPath, splitPath } from '../discover/values-path.ts';
import { awsRegion, objectStoreHost, OBJECT_STORE_DEFAULTS, VELERO_PROVIDERS, type CloudProvider, type ObjectStoreDefault } from './rules.ts';
import type { Occurrence } from './scan.ts';

export interface ImpliedObjectStore {
  host: string;
  rule: string;
  resource: string;
  origin?: string;
  /** The block or setting that configures the client: `data["config.yml"].storage.s3`, `spec.provider`. */
  path: string;
  /** What the finding shows (no value from the block but the region or account in the host). */
  display: string;
  hint: string;
}

/** `a.b["c.d"][0]` → parent `a.b["c.d"]`, last `0`; undefined for a path of one segment. */
function splitLast(path: string): { parent: string; last: string | number } | undefined {
  const segments = splitPath(path);
  if (segments === undefined || segments.length < 2) return undefined;
  return { parent: segments.slice(0, -1).reduce<string>((p, k) => joinPath(p, k), ''), last: segments[segments.length - 1]! };
}

const norm = (k: string): string => k.toLowerCase().replace(/[_-]/g, '');

function filled(v: unknown): boolean {
  return v !== undefined && v !== null && String(v).trim().replace(/^["']|["']$/g, '') !== '';
}

interface Block {
  resource: string;
  origin?: string;
  /** The block's path and its key path (`storage.s3`, for what kind of config it is). */
  path: string;
  keyPath: string;
  /** The key the block stands under. */
  name: string;
  /** Its settings by normalised key. */
  keys: Map<string, Occurrence>;
}

/** Settings grouped by the map they stand in: one block per `resource` and parent path. */
function blocksOf(occurrences: readonly Occurrence[]): Block[] {
  const blocks = new Map<string, Block>();
  for (const o of occurrences) {
    if (o.role !== 'text' || o.fromConfigMapKey !== undefined || o.path.includes(' (line ')) continue;
    const leaf = splitLast(o.path);
    if (!leaf || typeof leaf.last !== 'string') continue;
    const parent = splitLast(leaf.parent);
    if (!parent || typeof parent.last !== 'string') continue;
    const id = `${o.resource}\u0000${leaf.parent}`;
    let b = blocks.get(id);
    if (!b) {
      const cut = o.keyPath.lastIndexOf('.');
      b = { resource: o.resource, ...(o.origin !== undefined ? { origin: o.origin } : {}), path: leaf.parent, keyPath: cut > 0 ? o.keyPath.slice(0, cut) : '', name: parent.last, keys: new Map() };
      blocks.set(id, b);
    }
    b.keys.set(norm(leaf.last), o);
  }
  return [...blocks.values()];
}

/** `s3: s3://key:secret@region/bucket` (Loki): the region when the URL's host is one, `endpoint` when it names a host. */
function s3UrlTarget(value: unknown): { region?: string } | 'endpoint' | undefined {
  if (typeof value !== 'string') return undefined;
  const m = /^([A-Za-z][A-Za-z0-9+.-]{0,30}):\/\/(?:[^@/]{0,500}@)?([^/:?#]{0,253})/.exec(value.trim());
  if (!m) return undefined;
  if (m[1]!.toLowerCase() !== 's3' || m[2]!.includes('.')) return 'endpoint';
  const region = awsRegion(m[2]);
  return region !== undefined ? { region } : {};
}

/** Which key a hint names, by the shape of the config the block stands in. */
function overrideKey(rule: ObjectStoreDefault, b: Block, typed: boolean): string {
  const distribution = b.keyPath === `storage.${b.name}`;
  if (rule.provider === 'aws') return distribution ? 'regionendpoint' : typed ? 'config.endpoint' : 'endpoint';
  if (rule.provider === 'azure') return distribution ? 'realm (or serviceurl)' : typed ? 'config.endpoint' : [...b.keys.keys()].some((k) => b.keys.get(k)!.key?.includes('_')) ? 'endpoint_suffix' : 'endpoint';
  return 'endpoint';
}

function storeHint(rule: ObjectStoreDefault, host: string, key: string, what: string): string {
  if (rule.provider === 'gcp') {
    return `this ${what} names a Google Cloud Storage bucket and no endpoint, so it reads and writes ${host}: move it to an internal S3-compatible store (an s3 backend with ${key} set to MinIO or Ceph RGW) or to local storage`;
  }
  return `this ${what} sets no ${key}, so it reads and writes ${rule.service} at ${host}: set ${key} to an internal ${rule.provider === 'aws' ? 'S3-compatible store (MinIO, Ceph RGW)' : 'blob endpoint (Azurite, Azure Stack)'} or use local storage`;
}

function fromBlocks(occurrences: readonly Occurrence[]): ImpliedObjectStore[] {
  const out: ImpliedObjectStore[] = [];
  const byPath = new Map(occurrences.map((o) => [`${o.resource}\u0000${o.path}`, o]));
  const sibling = (b: Block, key: string): Occurrence | undefined => {
    const up = splitLast(b.path);
    return up ? byPath.get(`${b.resource}\u0000${joinPath(up.parent, key)}`) : undefined;
  };
  for (const b of blocksOf(occurrences)) {
    const name = norm(b.name);
    // Thanos-style `type: S3` beside `config:`; else a block named for its driver (`s3:`, `gcs:`).
    const type = name === 'config' ? sibling(b, 'type') : undefined;
    const typed = type !== undefined && typeof type.value === 'string';
    const rule = typed
      ? OBJECT_STORE_DEFAULTS.find((r) => r.type === String(type.value).trim().toLowerCase())
      : OBJECT_STORE_DEFAULTS.find((r) => r.blocks[name] !== undefined && r.blocks[name]!.some((k) => b.keys.has(k)));
    if (rule === undefined) continue;
    if (typed && !Object.values(rule.blocks).flat().some((k) => b.keys.has(k))) continue;
    // A block beside `backend: filesystem` (Mimir, Tempo) is configured but not used; `enabled: false` is off.
    const backend = typed ? undefined : sibling(b, 'backend');
    if (backend !== undefined && typeof backend.value === 'string' && norm(backend.value) !== name) continue;
    const enabled = b.keys.get('enabled');
    if (enabled !== undefined && /^(false|no|off|0)$/i.test(String(enabled.value).trim())) continue;
    if (rule.overrides.some((k) => filled(b.keys.get(k)?.value))) continue;
    let region = awsRegion(b.keys.get('region')?.value);
    const url = rule.provider === 'aws' ? s3UrlTarget(b.keys.get('s3')?.value) : undefined;
    if (url === 'endpoint') continue;
    if (url?.region !== undefined) region ??= url.region;
    const accountKey = ['accountname', 'storageaccount', 'storageaccountname'].find((k) => b.keys.has(k));
    const account = accountKey !== undefined ? String(b.keys.get(accountKey)!.value).trim().toLowerCase() : undefined;
    const host = objectStoreHost(rule.provider, { region, account });
    const key = overrideKey(rule, b, typed);
    const what = typed ? `object-store config (type: ${String(type.value)})` : b.keyPath === `storage.${b.name}` ? `registry's ${b.name} storage driver` : `${b.name} storage block`;
    const shown = typed ? `type: ${String(type.value)}, no ${key}` : `${b.name}: no ${key}`;
    const first = typed ? type : b.keys.values().next().value!;
    out.push({
      host,
      rule: rule.id,
      resource: b.resource,
      ...(first.origin !== undefined ? { origin: first.origin } : {}),
      path: typed ? type.path : b.path,
      display: `${shown}, ${rule.service} by default`,
      hint: storeHint(rule, host, key, what),
    });
  }
  return out;
}

/** Docker distribution configured by env (`REGISTRY_STORAGE_S3_BUCKET` without `REGISTRY_STORAGE_S3_REGIONENDPOINT`). */
function fromRegistryEnv(occurrences: readonly Occurrence[]): ImpliedObjectStore[] {
  const groups = new Map<string, { first: Occurrence; driver: string; keys: Map<string, Occurrence> }>();
  for (const o of occurrences) {
    const m = /^REGISTRY_STORAGE_(S3|GCS|AZURE)_([A-Z0-9_]+)$/.exec(o.keyPath);
    if (!m || o.role !== 'text') continue;
    const list = o.path.replace(/\[[0-9]+\]\.(value|valueFrom\.configMapKeyRef)$/, '');
    const id = `${o.resource}\u0000${list}\u0000${m[1]!}`;
    const g = groups.get(id) ?? { first: o, driver: m[1]!.toLowerCase(), keys: new Map<string, Occurrence>() };
    g.keys.set(norm(m[2]!), o);
    groups.set(id, g);
  }
  const out: ImpliedObjectStore[] = [];
  for (const g of groups.values()) {
    const rule = OBJECT_STORE_DEFAULTS.find((r) => r.blocks[g.driver]?.some((k) => g.keys.has(k)));
    if (rule === undefined || rule.overrides.some((k) => filled(g.keys.get(k)?.value))) continue;
    const account = g.keys.get('accountname')?.value;
    const host = objectStoreHost(rule.provider, { region: awsRegion(g.keys.get('region')?.value), account: typeof account === 'string' ? account.trim().toLowerCase() : undefined });
    const key = `REGISTRY_STORAGE_${g.driver.toUpperCase()}_${rule.provider === 'azure' ? 'REALM' : rule.provider === 'aws' ? 'REGIONENDPOINT' : 'ENDPOINT'}`;
    const anchor = g.keys.get('bucket') ?? g.keys.get('region') ?? g.keys.get('accountname') ?? g.first;
    out.push({
      host,
      rule: rule.id,
      resource: anchor.resource,
      ...(anchor.origin !== undefined ? { origin: anchor.origin } : {}),
      path: anchor.path,
      display: `${anchor.keyPath}=${String(anchor.value)}, no ${key}: ${rule.service} by default`,
      hint: storeHint(rule, host, key, "registry's storage driver (set by env)"),
    });
  }
  return out;
}

const VELERO_PROVIDER = /^(?:velero\.io\/)?(aws|gcp|azure)$/;

/** Velero locations by provider: backups to the cloud's object store, snapshots through its compute API. */
function fromVelero(occurrences: readonly Occurrence[]): ImpliedObjectStore[] {
  const out: ImpliedObjectStore[] = [];
  for (const o of occurrences) {
    if ((o.kind !== 'BackupStorageLocation' && o.kind !== 'VolumeSnapshotLocation') || o.path !== 'spec.provider' || typeof o.value !== 'string') continue;
    const provider = VELERO_PROVIDER.exec(o.value.trim())?.[1] as CloudProvider | undefined;
    if (provider === undefined) continue;
    const config = (k: string): Occurrence | undefined => occurrences.find((x) => x.resource === o.resource && x.path === `spec.config.${k}`);
    const region = awsRegion(config('region')?.value);
    const v = VELERO_PROVIDERS[provider];
    const base = { resource: o.resource, ...(o.origin !== undefined ? { origin: o.origin } : {}), path: o.path };
    if (o.kind === 'VolumeSnapshotLocation') {
      const host = v.snapshotHost(region);
      out.push({ ...base, host, rule: `velero-snapshots-${provider}`, display: `provider: ${o.value}, volume snapshots through ${v.snapshotApi}`, hint: `Velero takes these volume snapshots through ${v.snapshotApi} at ${host}, which no setting moves: use CSI snapshots or file-system backup (Kopia) to an internal store, and drop this VolumeSnapshotLocation` });
      continue;
    }
    if (v.backupOverride !== undefined && filled(config(v.backupOverride)?.value)) continue;
    const rule = OBJECT_STORE_DEFAULTS.find((r) => r.provider === provider)!;
    const account = config('storageAccount')?.value;
    const host = objectStoreHost(provider, { region, account: typeof account === 'string' ? account.trim().toLowerCase() : undefined });
    const key = v.backupOverride !== undefined ? `config.${v.backupOverride}` : undefined;
    const hint = key !== undefined
      ? `Velero stores these backups in ${rule.service} at ${host} because no spec.${key} is set: ${provider === 'aws' ? `set spec.${key} to an internal S3-compatible store (MinIO, Ceph RGW)` : `set spec.${key} to an internal blob endpoint, or use provider aws with spec.config.s3Url pointing at an internal S3-compatible store (MinIO, Ceph RGW)`}`
      : `Velero stores these backups in ${rule.service} at ${host}: use provider aws with spec.config.s3Url pointing at an internal S3-compatible store (MinIO, Ceph RGW)`;
    out.push({ ...base, host, rule: `velero-backups-${provider}`, display: `provider: ${o.value}${key !== undefined ? `, no ${key}` : ''}, ${rule.service} by default`, hint });
  }
  return out;
}

/** Every object-storage client that reaches a public cloud because no endpoint points it elsewhere. */
export function impliedObjectStores(occurrences: readonly Occurrence[]): ImpliedObjectStore[] {
  return [...fromBlocks(occurrences), ...fromRegistryEnv(occurrences), ...fromVelero(occurrences)];
}
