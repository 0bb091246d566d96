#!/bin/sh
# Entry point of the image: the first argument picks the role; anything else runs as given (e.g. `sh`).
# exec keeps Node as tini's direct child, so SIGTERM reaches the shutdown handlers.
set -eu
cd "$(dirname "$0")/.."

role="${1:-api}"
[ "$#" -gt 0 ] && shift

case "$role" in
  api) exec node --import tsx service/api.ts "$@" ;;
  worker) exec node --import tsx service/worker.ts "$@" ;;
  *) exec "$role" "$@" ;;
esac
