// The pinned helm (v4.1.4) and kubectl (v1.35) the tests use, installed into .tools/bin by
// scripts/setup.sh (scripts/install-helm.sh). Tests pass these paths explicitly (--helm, { helm })
// so a different helm on the machine's PATH never changes a result.
import { accessSync, constants } from 'node:fs';
import { fileURLToPath } from 'node:url';

const TOOLS_BIN = fileURLToPath(new URL('../../.tools/bin/', import.meta.url));

function tool(name: string): string {
  const path = `${TOOLS_BIN}${name}`;
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(`${path} is missing: run \`bash scripts/setup.sh\` (or scripts/install-helm.sh) first`);
  }
  return path;
}

/** Absolute path of the pinned helm binary: <repo>/.tools/bin/helm. */
export function helmPath(): string {
  return tool('helm');
}

/** Absolute path of the pinned kubectl binary beside it: <repo>/.tools/bin/kubectl. */
export function kubectlPath(): string {
  return tool('kubectl');
}
