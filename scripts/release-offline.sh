#!/bin/bash
# npm run release:offline: the release tarball of scripts/release.sh plus node_modules (production
# dependencies, native modules built here), for boxes that reach no npm registry (an air-gapped lab,
# the virtual rig). Built for THIS machine's CPU and Node ABI: the tarball is named after both, e.g.
# release/rigcam-0.1.0+offline-linux-x64-node115.tar.gz, and carries OFFLINE (what it was built for).
# Install it with the ansible role and `rigcam_npm_ci: false` (see deploy/README.md).
# node_modules are cached by package-lock.json, CPU and Node ABI under $RIGCAM_OFFLINE_CACHE
# (default ~/.cache/rigcam-offline). RIGCAM_RELEASE_DIR sets the output folder (default: release/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

out_dir="${RIGCAM_RELEASE_DIR:-release}"
cache_root="${RIGCAM_OFFLINE_CACHE:-${HOME:-/root}/.cache/rigcam-offline}"
arch="$(node -p 'process.platform + "-" + process.arch')"
abi="$(node -p 'process.versions.modules')"
version="$(node -p 'require("./package.json").version')"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT

RIGCAM_RELEASE_DIR="$stage/plain" bash scripts/release.sh >/dev/null
tar -xzf "$stage/plain/rigcam-$version.tar.gz" -C "$stage"
rel="$stage/rigcam-$version"

key="$( (sha256sum package-lock.json; echo "$arch $abi") | sha256sum | cut -c1-16)"
cached="$cache_root/$key/node_modules"
if [ ! -d "$cached" ]; then
  echo "release-offline: npm ci --omit=dev for $arch node ABI $abi" >&2
  (cd "$rel" && nice -n 10 npm ci --omit=dev --no-audit --no-fund --loglevel=error >&2)
  mkdir -p "$cache_root/$key.tmp"
  cp -a "$rel/node_modules" "$cache_root/$key.tmp/"
  rm -rf "${cache_root:?}/$key" && mv "$cache_root/$key.tmp" "$cache_root/$key"
else
  cp -a "$cached" "$rel/"
fi
# The native modules must load here, or the release is useless anywhere.
(cd "$rel" && node -e 'require("better-sqlite3")(":memory:").prepare("select 1").get(); require("@serialport/bindings-cpp")')
printf '{"platform_arch":"%s","node_abi":%s,"node":"%s"}\n' "$arch" "$abi" "$(node --version)" >"$rel/OFFLINE"

name="rigcam-$version+offline-$arch-node$abi"
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
mkdir -p "$out_dir"
# The folder inside keeps the plain release's name: the ansible role strips it.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$stage" -cf - "rigcam-$version" |
  gzip -n -6 >"$out_dir/$name.tar.gz"
echo "$out_dir/$name.tar.gz"
