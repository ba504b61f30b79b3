#!/bin/sh
# The container image's entry point (deploy/container/Containerfile; docs/deployment.md).
#   (no argument) | serve [OPTIONS…]   custos serve on the data directory volume, listening on
#                                      $CUSTOS_HOST:$CUSTOS_PORT (default 0.0.0.0:8420), with OPTIONS
#   init [OPTIONS…]                    custos init on the data directory volume (once)
#   any other custos command           run as given (give it --data-dir "$CUSTOS_DATA_DIR" itself)
# The data directory ($CUSTOS_DATA_DIR, default /var/lib/custos) must be a writable directory — the
# volume; it is the only path the signer writes to (the image runs with a read-only root filesystem).
# custos serve refuses plain HTTP on 0.0.0.0 unless given --insecure-http (TLS terminated by a proxy
# in front) or --tls-cert/--tls-key: the entry point adds neither.
set -eu

CUSTOS_DATA_DIR="${CUSTOS_DATA_DIR:-/var/lib/custos}"
CUSTOS_HOST="${CUSTOS_HOST:-0.0.0.0}"
CUSTOS_PORT="${CUSTOS_PORT:-8420}"
# the checkout this script belongs to: /opt/custos in the image
root="$(cd "$(dirname "$0")/../.." && pwd)"
custos="$root/packages/cli/bin/custos.js"

command="${1:-serve}"
[ "$#" -gt 0 ] && shift

case "$command" in
  serve | init)
    if [ ! -d "$CUSTOS_DATA_DIR" ] || [ ! -w "$CUSTOS_DATA_DIR" ]; then
      echo "custos-entrypoint: the data directory $CUSTOS_DATA_DIR is not a writable directory: mount the data volume there (owned by uid $(id -u))" >&2
      exit 64
    fi
    ;;
esac

case "$command" in
  serve) exec node "$custos" serve --data-dir "$CUSTOS_DATA_DIR" --host "$CUSTOS_HOST" --port "$CUSTOS_PORT" "$@" ;;
  init) exec node "$custos" init --data-dir "$CUSTOS_DATA_DIR" "$@" ;;
  *) exec node "$custos" "$command" "$@" ;;
esac
