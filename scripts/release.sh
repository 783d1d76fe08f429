#!/bin/bash
# npm run release: builds release/rigcam-<version>.tar.gz, the tarball that deploy/image/build-image.sh
# and the ansible role install. Contents, under rigcam-<version>/: dist/ (compiled), bin/,
# package.json, package-lock.json, README.md, deploy/. No src/: bin/rigcam.js runs dist/ when src/ is absent.
# No node_modules: the box runs `npm ci --omit=dev` itself (no tsx, esbuild or typescript there), so native
# modules (better-sqlite3, serialport) match its CPU and Node.
# RIGCAM_RELEASE_DIR sets the output folder (default: release/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out_dir="${RIGCAM_RELEASE_DIR:-release}"
version="$(node -p 'require("./package.json").version')"
name="rigcam-$version"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
mkdir "$stage/$name"

# Compiled straight into the staging folder (with the web page's files in dist/web), not ./dist.
npm run --silent build -- --outDir "$stage/$name/dist"
cp -R bin package.json package-lock.json deploy "$stage/$name/"
[ -f README.md ] && cp README.md "$stage/$name/"

# Reproducible: fixed owner, order and time (the last commit's, or SOURCE_DATE_EPOCH).
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
mkdir -p "$out_dir"
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$stage" -cf - "$name" |
  gzip -n -9 >"$out_dir/$name.tar.gz"
echo "$out_dir/$name.tar.gz"
