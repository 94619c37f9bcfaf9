#!/bin/sh
# helm runs this with the rendered manifests on stdin and each --post-renderer-args value as an
# argument; the mapped manifests go to stdout. $AIRLOCK may name another command (e.g. a path,
# or "npx --prefix /opt/airlock airlock"), word-split on purpose.
# shellcheck disable=SC2086
exec ${AIRLOCK:-airlock} post-render "$@"
