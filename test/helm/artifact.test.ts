// The real helm as the oracle: the OCI artifact airlock builds for a chart has the config bytes and
// the manifest `helm push` makes (creation time aside), Chart.yaml is read the way helm reads it
// (YAML 1.1 scalars, sanitising), and a chart folder is packaged with the files `helm package`
// takes (.helmignore, templates/ dotfiles) — deterministically.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, readdir, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startRegistry, type RunningRegistry } from '../helpers/registry.ts';
import { loadChartArchive } from '../../src/helm/chart-load.ts';
import { helmConfigJson, parseChartMetadata } from '../../src/helm/chart-metadata.ts';
import { buildChartArtifact } from '../../src/helm/artifact.ts';
import { readChartTgz } from '../../src/helm/chart-tgz.ts';
import { packageChartDir } from '../../src/helm/package-dir.ts';
import { helmWithState, removeDir, type Helm } from './support.ts';

const CREATED = 'org.opencontainers.image.created';

async function writeTree(root: string, files: Record<string, string>): Promise<void> {
  for (const [path, text] of Object.entries(files)) {
    await mkdir(join(root, path, '..'), { recursive: true });
    await writeFile(join(root, path), text);
  }
}

const CHARTS: Record<string, Record<string, string>> = {
  // Every Metadata field, YAML 1.1 scalars that become strings, text helm's JSON escapes.
  tricky: {
    'Chart.yaml': `apiVersion: v2
name: tricky
version: 2.0.0+meta.1
appVersion: 1.10
kubeVersion: ">=1.25.0-0"
description: "Shop <web> & \\"api\\"\\tfor café ☕"
home: https://tricky.example.test
sources: [https://src.example.test/a, https://src.example.test/b]
keywords: [1, true, 1.50, 0x1F, web]
maintainers:
  - name: Ann
    email: ann@example.test
  - name: Bob
    url: https://bob.example.test
  - email: nobody@example.test
icon: https://tricky.example.test/icon.png
condition: tricky.enabled
tags: yes
deprecated: true
type: application
annotations:
  zeta: 007
  alpha: "two"
  org.opencontainers.image.title: not-the-title
  org.opencontainers.image.url: https://override.example.test
  empty: ~
dependencies:
  - name: dep
    version: "~1"
    repository: https://charts.example.test
    condition: dep.enabled
    tags: [a, b]
    enabled: true
    alias: d1
    import-values:
      - child: z.y
        parent: a
      - data
`,
    'templates/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: tricky\n',
    'charts/dep/Chart.yaml': 'apiVersion: v2\nname: dep\nversion: 1.0.0\n',
  },
  // The smallest chart: no annotations but title, version and created.
  tiny: { 'Chart.yaml': 'apiVersion: v2\nname: tiny\nversion: 0.0.1\n' },
  // An apiVersion v1 chart: its dependencies live in requirements.yaml.
  legacy: {
    'Chart.yaml': 'apiVersion: v1\nname: legacy\nversion: 1.0.0\ndescription: old style\n',
    'requirements.yaml': 'dependencies:\n  - name: sub\n    version: 1.x\n    repository: https://charts.example.test\n',
    'charts/sub/Chart.yaml': 'apiVersion: v1\nname: sub\nversion: 1.2.0\n',
  },
};

describe('Helm OCI artifacts match what helm push makes', () => {
  let reg: RunningRegistry;
  let dir: string;
  let helm: Helm;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'airlock-helm-artifact-'));
    reg = await startRegistry();
    helm = helmWithState(join(dir, 'helm'));
  });
  after(async () => {
    await reg?.stop();
    await removeDir(dir);
  });

  for (const [name, files] of Object.entries(CHARTS)) {
    test(`${name}: config bytes and manifest equal helm's`, async () => {
      const src = join(dir, 'src', name);
      await writeTree(src, files);
      const out = join(dir, 'out', name);
      await helm.run(['package', src, '-d', out]);
      const [file] = await readdir(out);
      const tgz = await readFile(join(out, file!));
      await helm.run(['push', join(out, file!), `oci://${reg.host}/charts`, '--plain-http']);

      const chart = loadChartArchive(tgz, file!);
      const tag = chart.meta.version.replaceAll('+', '_');
      const res = await fetch(`${reg.url}/v2/charts/${name}/manifests/${tag}`, { headers: { accept: 'application/vnd.oci.image.manifest.v1+json' } });
      const helmManifest = await res.text();
      const m = JSON.parse(helmManifest) as { config: { digest: string }; annotations: Record<string, string> };
      const helmConfig = await (await fetch(`${reg.url}/v2/charts/${name}/blobs/${m.config.digest}`)).text();

      const ours = buildChartArtifact(tgz, chart.meta, chart.packagedAt);
      assert.equal(ours.config.bytes.toString('utf8'), helmConfig, 'config: json.Marshal(chart.Metadata)');
      // Our creation time comes from the archive (helm's from the file's mtime): compare the rest.
      const withHelmTime = ours.manifest.bytes.toString('utf8').replace(/"org\.opencontainers\.image\.created":"[^"]*"/, `"${CREATED}":"${m.annotations[CREATED]}"`);
      assert.equal(withHelmTime, helmManifest, 'manifest: same fields, order, annotations and escaping');
      // The raw Chart.yaml on disk reads to the same metadata helm packaged from it.
      const raw = parseChartMetadata(files['Chart.yaml']!, name, files['requirements.yaml']);
      assert.equal(helmConfigJson(raw), helmConfig, 'YAML 1.1 scalars read as helm reads them');
      // And helm renders what airlock packages from the same folder.
      const mine = await packageChartDir(src, name);
      await writeFile(join(dir, `${name}-ours.tgz`), mine.bytes);
      await helm.run(['show', 'chart', join(dir, `${name}-ours.tgz`)]);
    });
  }

  test('a folder is packaged with the files helm packages, and deterministically', async () => {
    const src = join(dir, 'ignore', 'pick');
    await writeTree(src, {
      'Chart.yaml': 'apiVersion: v2\nname: pick\nversion: 0.1.0\n',
      'values.yaml': 'a: 1\n',
      '.helmignore': ['# comments and blank lines are skipped', '', '*.md', 'secret/', '/top.txt', 'docs/*.txt', 'tmp[0-9].log', '*.swp'].join('\n'),
      'README.md': 'ignored everywhere by *.md',
      'templates/NOTES.md': 'ignored too',
      'templates/cm.yaml': 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: pick\n',
      'templates/.hidden.yaml': 'ignored by helm default rule',
      'templates/sub/.keep': 'kept: templates/.?* does not reach into sub-folders',
      'secret/key.pem': 'a directory rule',
      'files/secret': 'a file named like the directory rule: kept',
      'top.txt': 'anchored: ignored',
      'files/top.txt': 'anchored rule does not reach here: kept',
      'docs/a.txt': 'ignored by docs/*.txt',
      'docs/deep/b.txt': 'kept: * does not cross /',
      'tmp1.log': 'ignored by the class',
      'tmpx.log': 'kept',
      'files/.env.swp': 'ignored by base name',
    });
    const out = join(dir, 'ignore', 'out');
    await helm.run(['package', src, '-d', out]);
    const helmNames = readChartTgz(await readFile(join(out, 'pick-0.1.0.tgz')), 'helm').files.map((f) => f.path).sort();
    const first = await packageChartDir(src, 'pick');
    const ourNames = readChartTgz(first.bytes, 'airlock').files.map((f) => f.path).sort();
    assert.deepEqual(ourNames, helmNames);
    assert.ok(ourNames.includes('files/secret') && !ourNames.includes('secret/key.pem'));

    // The same content gives the same bytes, whatever the files' times; new content, new bytes.
    for (const f of ['Chart.yaml', 'values.yaml', 'templates/cm.yaml']) await utimes(join(src, f), new Date(2001, 1, 1), new Date(2001, 1, 1));
    assert.ok((await packageChartDir(src, 'pick')).bytes.equals(first.bytes), 'mtimes do not matter');
    await writeFile(join(src, 'values.yaml'), 'a: 2\n');
    assert.ok(!(await packageChartDir(src, 'pick')).bytes.equals(first.bytes), 'content does');
    await writeFile(join(dir, 'ignore', 'pick.tgz'), first.bytes);
    assert.match((await helm.run(['template', 'x', join(dir, 'ignore', 'pick.tgz')])).stdout, /name: pick/);
  });
});
