#!/usr/bin/env bash
# Install what airlock's demo and tests need on a fresh Debian machine: the real peer components
# from apt (only those missing), Node 24 with the npm dependencies (npm ci), the pinned helm and
# the Node binaries the single executables are built on.
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
need=()
command -v docker-registry >/dev/null || need+=(docker-registry)   # the real OCI registry (distribution 2.8)
command -v skopeo >/dev/null          || need+=(skopeo)            # peer client and benchmark peer
command -v htpasswd >/dev/null        || need+=(apache2-utils)     # bcrypt htpasswd for the auth tests
command -v openssl >/dev/null         || need+=(openssl)           # test CA and certificates
command -v containerd >/dev/null      || need+=(containerd)        # ctr images import of bundles
command -v nginx >/dev/null           || need+=(nginx)             # reverse proxy with a body limit in front of the registry (chunked uploads)
command -v tinyproxy >/dev/null       || need+=(tinyproxy)         # forward proxy between airlock and registries in the proxy tests
command -v squid >/dev/null           || need+=(squid)             # forward proxy answering 407 (proxy auth tests)
command -v unzip >/dev/null           || need+=(unzip)             # helm comes inside a zip (scripts/install-helm.sh)
command -v ip >/dev/null              || need+=(iproute2)          # airlock sandbox: network namespaces
command -v nft >/dev/null             || need+=(nftables)          # airlock sandbox: egress recorder
command -v unshare >/dev/null         || need+=(util-linux)        # private skopeo state in tests (unshare -U), setpriv
command -v chromium >/dev/null        || need+=(chromium)          # report: the HTML rendered with JavaScript off
command -v fincore >/dev/null         || need+=(util-linux-extra)  # page-cache checks of the blob cache's tests
command -v qemu-aarch64-static >/dev/null || need+=(qemu-user-static)  # runs the arm64 executable in its tests
[ -e /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 ] || need+=(libc6-arm64-cross)      # … with these as its sysroot
[ -e /usr/aarch64-linux-gnu/lib/libstdc++.so.6 ]        || need+=(libstdc++6-arm64-cross)
if [ ${#need[@]} -gt 0 ]; then
  echo "setup: installing ${need[*]}" >&2
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends ca-certificates "${need[@]}" >/dev/null
fi
if [ ! -x node_modules/.bin/node ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci (brings Node 24 as a devDependency)" >&2
  npm ci --no-audit --no-fund --loglevel=error
fi
bash scripts/install-helm.sh
node_modules/.bin/node -e 'if (+process.versions.node.split(".")[0] < 24) { console.error("setup: node_modules/.bin/node is not Node 24"); process.exit(1) }'
node_modules/.bin/node scripts/build-exe.ts --fetch-node   # the pinned Node binaries the executables are built on (.tools/node)
