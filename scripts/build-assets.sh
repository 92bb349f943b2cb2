#!/usr/bin/env bash
# Build the browser bundles (frontend/ → web/static/dist/) from the pinned npm packages.
#
# `npm ci` runs only when frontend/package-lock.json differs from the one last installed (a stamp in
# node_modules/ holds its hash); the bundle is rebuilt only when the lock file, build.mjs or src/
# changed since the last build (a stamp in dist/). Set FORCE=1 to do both regardless.
# The new dist/ is built aside and swapped in, so a server or test run reading it never sees it half-built.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
FRONTEND="$ROOT/frontend"
DIST="$ROOT/web/static/dist"
MODULES="$FRONTEND/node_modules"
INSTALL_STAMP="$MODULES/.fengqiao-lock.sha256"
BUILD_STAMP="$DIST/.fengqiao-build.sha256"
MIN_NODE=18

fail() { echo "build-assets: $*" >&2; exit 1; }

command -v node >/dev/null 2>&1 || fail "node is not installed: install Node.js $MIN_NODE or newer (with npm) to build web/static/dist/."
command -v npm >/dev/null 2>&1 || fail "npm is not installed: install npm (it ships with Node.js) to build web/static/dist/."
node_major="$(node -p 'process.versions.node.split(".")[0]')"
[ "$node_major" -ge "$MIN_NODE" ] || fail "Node.js $(node --version) is too old: esbuild needs $MIN_NODE or newer."

cd "$FRONTEND"
lock_hash="$(sha256sum package-lock.json | cut -d' ' -f1)"
if [ "${FORCE:-0}" = 1 ] || [ ! -f "$INSTALL_STAMP" ] || [ "$(cat "$INSTALL_STAMP")" != "$lock_hash" ]; then
    echo "build-assets: installing the pinned npm packages (npm ci)..."
    # No install scripts: esbuild finds its platform binary without its postinstall step.
    npm ci --no-audit --no-fund --ignore-scripts --loglevel=error || fail "npm ci failed (see above)."
    echo "$lock_hash" > "$INSTALL_STAMP"
fi

build_hash="$( (sha256sum package-lock.json build.mjs; find src -type f -print0 | sort -z | xargs -0 sha256sum) \
    | sha256sum | cut -d' ' -f1)"
if [ "${FORCE:-0}" != 1 ] && [ -f "$BUILD_STAMP" ] && [ "$(cat "$BUILD_STAMP")" = "$build_hash" ] \
        && [ -f "$DIST/diagram.js" ]; then
    exit 0
fi

echo "build-assets: bundling into web/static/dist/..."
mkdir -p "$MODULES/.cache"
staging="$(mktemp -d "$MODULES/.cache/dist.XXXXXX")"
trap 'rm -rf "$staging" "$staging.old"' EXIT
node build.mjs --outdir="$staging" || fail "the esbuild bundle failed (see above)."
echo "$build_hash" > "$staging/.fengqiao-build.sha256"
chmod 755 "$staging"
if [ -d "$DIST" ]; then mv "$DIST" "$staging.old"; fi
mv "$staging" "$DIST"
