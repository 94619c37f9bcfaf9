// `airlock audit` on object storage as charts configure it (test/fixtures/audit/storage): a storage
// client that names a bucket (or an account) and no endpoint reaches its cloud's public object store,
// a host that stands in no value. A registry's `storage.s3` without `regionendpoint` (in a config file
// or by REGISTRY_STORAGE_* env), `gcs`/`azure` drivers, Velero locations by `spec.provider` without
// `config.s3Url`, Loki/Mimir/Tempo `s3`/`gcs`/`azure` blocks and Thanos `type: S3` without
// `endpoint` are findings; the same clients pointed at an internal store are not (their endpoint is
// judged where it stands), and neither is a block its `backend:` does not use.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { sarifErrors } from './support/sarif-shape.ts';
import { auditManifests } from '../../src/audit/audit.ts';
import type { AuditFinding, InternalEndpoint } from '../../src/audit/types.ts';
import { auditCli } from './support/audit-cli.ts';

const run = auditCli;
type Out = { findings: AuditFinding[]; internal?: InternalEndpoint[] };

describe('audit: object storage that reaches a public cloud by default', () => {
  it('finds every client left at its cloud default, and none pointed at an internal store', async () => {
    const r = await run(['storage', '--format', 'json', '--show-internal', '--internal-domain', 'corp.internal']);
    assert.equal(r.code, 7, r.stderr);
    const out = JSON.parse(r.stdout) as Out;
    const found = out.findings.filter((f) => f.category === 'object-storage').map((f) => `${f.host} ${f.rule} ${f.resource} ${f.path}`).sort();
    assert.deepEqual(found, [
      'ec2.us-west-2.amazonaws.com velero-snapshots-aws VolumeSnapshotLocation/default/default spec.provider',
      's3.ap-south-1.amazonaws.com object-storage-aws-default Secret/default/release-name-objstore stringData["objstore.yml"].type',
      's3.eu-central-1.amazonaws.com object-storage-aws-default ConfigMap/default/release-name-logs data["config.yaml"].common.storage.s3',
      's3.eu-west-1.amazonaws.com object-storage-aws-default Deployment/default/release-name-cache spec.template.spec.containers[0].env[2].value',
      's3.us-east-1.amazonaws.com object-storage-aws-default ConfigMap/default/release-name-registry data["config.yml"].storage.s3',
      's3.us-east-2.amazonaws.com object-storage-aws-default ConfigMap/default/release-name-logs-onprem data["config.yaml"].storage_config.aws',
      's3.us-west-2.amazonaws.com velero-backups-aws BackupStorageLocation/default/default spec.provider',
      'storage.googleapis.com object-storage-gcs-default ConfigMap/default/release-name-metrics data["metrics.yaml"].blocks_storage.gcs',
      'storage.googleapis.com object-storage-gcs-default ConfigMap/default/release-name-registry-eu data["config.yml"].storage.gcs',
      'storage.googleapis.com velero-backups-gcp BackupStorageLocation/default/gcp spec.provider',
      'vendorbackups.blob.core.windows.net velero-backups-azure BackupStorageLocation/default/azure spec.provider',
      'vendorimages.blob.core.windows.net object-storage-azure-default ConfigMap/default/release-name-registry-west data["config.yml"].storage.azure',
      'vendortraces.blob.core.windows.net object-storage-azure-default ConfigMap/default/release-name-traces data["tempo.yaml"].storage.trace.azure',
    ]);
    for (const f of out.findings.filter((x) => x.category === 'object-storage')) {
      assert.equal(f.severity, 'high');
      assert.ok(f.line !== undefined, `${f.host} in ${f.resource} has a line`);
    }
    // Nothing else is reported: the internal stores are internal, the unused block is no finding.
    assert.deepEqual(out.findings.filter((f) => f.category !== 'object-storage').map((f) => f.host), ['vendor.example']);
    const internal = (out.internal ?? []).filter((e) => e.host === 'minio.corp.internal').map((e) => `${e.resource} ${e.path}`).sort();
    assert.deepEqual(internal, [
      'BackupStorageLocation/default/onprem spec.config.s3Url',
      'ConfigMap/default/release-name-logs-onprem data["config.yaml"].common.storage.s3.endpoint',
      'Secret/default/release-name-objstore-onprem stringData["objstore.yml"].config.endpoint',
      'Secret/default/release-name-registry-mirror stringData["config.yml"].storage.s3.regionendpoint',
    ]);
  });

  it('names the key that points each client at an internal endpoint, and shows nothing from a Secret', async () => {
    const r = await run(['storage', '--format', 'json', '--internal-domain', 'corp.internal']);
    const out = JSON.parse(r.stdout) as Out;
    const hint = (resource: string): string => out.findings.find((f) => f.resource === resource)!.hint;
    assert.match(hint('ConfigMap/default/release-name-registry'), /no regionendpoint.*set regionendpoint/);
    assert.match(hint('ConfigMap/default/release-name-logs'), /no endpoint.*set endpoint/);
    assert.match(hint('Secret/default/release-name-objstore'), /set config\.endpoint/);
    assert.match(hint('BackupStorageLocation/default/default'), /set spec\.config\.s3Url/);
    assert.match(hint('Deployment/default/release-name-cache'), /REGISTRY_STORAGE_S3_REGIONENDPOINT/);
    assert.ok(!r.stdout.includes('AKIAVENDOREXAMPLE'), 'no value from the Secret');
  });

  it('an endpoint set to the public store is found where it stands; an empty one is no endpoint; `enabled: false` is off', () => {
    const cm = (file: string) => ({ object: { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name: 'c', namespace: 'a' }, data: { 'config.yaml': file } } });
    const hosts = (file: string) => auditManifests([cm(file)]).findings.map((f) => `${f.host} ${f.rule}`);
    assert.deepEqual(hosts('storage:\n  s3:\n    bucket: b\n    region: eu-west-3\n    regionendpoint: https://s3.eu-west-3.amazonaws.com\n'), ['s3.eu-west-3.amazonaws.com external-endpoint']);
    assert.deepEqual(hosts('common:\n  storage:\n    s3:\n      bucketnames: b\n      endpoint: ""\n'), ['s3.amazonaws.com object-storage-aws-default']);
    assert.deepEqual(hosts('storage:\n  s3:\n    enabled: false\n    bucket: b\n'), []);
    // Loki's `s3:` URL with a host names an endpoint (judged as usual); with a region, AWS S3 there.
    assert.deepEqual(hosts('storage_config:\n  aws:\n    s3: s3://key:secret@minio.corp.example:9000/b\n'), ['minio.corp.example external-endpoint']);
    assert.deepEqual(hosts('storage_config:\n  aws:\n    s3: s3://key:secret@eu-north-1/b\n'), ['s3.eu-north-1.amazonaws.com object-storage-aws-default']);
    // An `aws:` block with a region and no bucket (a DNS provider's) is no object store.
    assert.deepEqual(hosts('provider:\n  aws:\n    region: us-east-1\n    zoneType: public\n'), []);
    // China regions live under amazonaws.com.cn.
    assert.deepEqual(hosts('storage:\n  s3:\n    bucket: b\n    region: cn-north-1\n'), ['s3.cn-north-1.amazonaws.com.cn object-storage-aws-default']);
  });

  it('writes SARIF that code scanning accepts for the object-storage rules', async () => {
    const r = await run(['storage', '--format', 'sarif', '--internal-domain', 'corp.internal']);
    const sarif = JSON.parse(r.stdout) as { runs: { tool: { driver: { rules: { id: string; help?: { text: string }; helpUri?: string }[] } } }[] };
    assert.deepEqual(sarifErrors(sarif), []);
    const rules = sarif.runs[0]!.tool.driver.rules.filter((x) => /^(object-storage|velero)-/.test(x.id));
    assert.deepEqual(rules.map((x) => x.id).sort(), ['object-storage-aws-default', 'object-storage-azure-default', 'object-storage-gcs-default', 'velero-backups-aws', 'velero-backups-azure', 'velero-backups-gcp', 'velero-snapshots-aws']);
    for (const x of rules) assert.ok(x.help !== undefined && x.helpUri !== undefined, x.id);
  });
});
