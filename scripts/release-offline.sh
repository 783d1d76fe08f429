#!/bin/bash
# npm run release:offline: the release tarball of scripts/release.sh plus node_modules (production
# dependencies, native modules built for the target), for boxes that reach no npm registry (an
# air-gapped lab, the virtual rig). The tarball is named after the target's CPU and Node ABI, e.g.
# release/rigcam-0.1.0+offline-linux-x64-node115.tar.gz, and carries OFFLINE (what it was built for).
# Install it with the ansible role and `rigcam_npm_ci: false` (see deploy/README.md).
#
#   scripts/release-offline.sh               # for THIS machine's CPU and Node (npm run release:offline)
#   scripts/release-offline.sh --arch arm64  # for the Pi (npm run release:offline:arm64), as root
#
# --arch arm64 runs `npm ci --omit=dev` and the smoke run inside an emulated arm64 Debian 13 (trixie)
# chroot (mmdebstrap + qemu-user-static, binfmt_misc), with trixie's own Node 20 (ABI 115, the box's).
# GitHub's prebuilt binaries are not assumed reachable, so better-sqlite3 may compile from source
# under emulation. Everything runs under `nice -n 19`, so it is slow on a busy machine: measured on the
# shared 2-core build machine (load 7-30 from other work), the chroot (623 packages; Debian's npm alone
# brings ~340 node-* ones) took 4699 s, 78 min (once: cached); then npm ci 1716 s (better-sqlite3
# compiled under emulation) and the smoke run 39 s: 1791 s in all with the chroot cached.
# The native path (no emulation) takes about 1 min with its node_modules cached, 10 s of it the smoke run.
#
# Either way the release is smoke-run where it was built, failing the build on any error:
# `rigcam --version`, `rigcam config check` on the default config, a 2 s `rigcam record --source test`
# whose CSV and database have frames, and the native modules (better-sqlite3, serialport's bindings)
# loaded from files of the target's CPU (`file` must say aarch64 for arm64).
#
# Caches under $RIGCAM_OFFLINE_CACHE (default ~/.cache/rigcam-offline): node_modules keyed by
# package-lock.json, CPU and Node ABI; the arm64 chroot keyed by its suite, mirror and packages
# ($RIGCAM_MIRROR, default http://deb.debian.org/debian). RIGCAM_RELEASE_DIR sets the output folder
# (default: release/).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

die() { echo "release-offline: $*" >&2; exit 1; }
target=native
while [ $# -gt 0 ]; do
  case "$1" in
    --arch) target="${2:-}"; shift $(($# > 1 ? 2 : 1)) ;;
    *) die "unknown option: $1 (usage: release-offline.sh [--arch arm64])" ;;
  esac
done
case "$target" in native | arm64) ;; *) die "--arch: only arm64 is supported (got '$target')" ;; esac

out_dir="${RIGCAM_RELEASE_DIR:-release}"
cache_root="${RIGCAM_OFFLINE_CACHE:-${HOME:-/root}/.cache/rigcam-offline}"
version="$(node -p 'require("./package.json").version')"
mkdir -p "$cache_root"
now() { date +%s; }
command -v file >/dev/null || die "file is missing (apt-get install -y file): it checks the native modules' CPU"

# --- Where commands run: here, or in the arm64 chroot ----------------------------------------------
if [ "$target" = native ]; then
  root=
  stage="$(mktemp -d)"
  trap 'rm -rf "$stage"' EXIT
  # in_target DIR CMD...: run CMD in DIR (a path on this machine).
  in_target() { (cd "$1" && shift && nice -n 10 "$@"); }
  tpath() { echo "$1"; }
else
  [ "$(id -u)" -eq 0 ] || die "--arch arm64 must run as root (mmdebstrap, chroot, mount)"
  for t in mmdebstrap arch-test unshare file; do
    command -v "$t" >/dev/null || die "$t is missing (apt-get install -y qemu-user-static binfmt-support arch-test mmdebstrap file)"
  done
  if [ "$(uname -m)" != aarch64 ]; then
    mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
    [ -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ] || update-binfmts --enable qemu-aarch64 >&2 ||
      die "no qemu-aarch64 binfmt handler (apt-get install -y qemu-user-static binfmt-support)"
    arch-test arm64 >/dev/null || die "arch-test arm64 fails: arm64 binaries cannot run here"
  fi

  mirror="${RIGCAM_MIRROR:-http://deb.debian.org/debian}"
  suite=trixie
  # What the chroot needs: Node and npm, the tools node-gyp builds better-sqlite3 and serialport with
  # (Debian's node-gyp takes Node's headers from libnode-dev: nodejs.org need not be reachable), ffmpeg
  # for the smoke run's test source.
  pkgs=(nodejs npm libnode-dev python3 make g++ ffmpeg ca-certificates)
  chroot_key="$(echo "arm64 $suite $mirror ${pkgs[*]}" | sha256sum | cut -c1-16)"
  root="$cache_root/chroot-arm64-$chroot_key"
  if [ ! -f "$root.done" ]; then
    echo "release-offline: building the arm64 $suite chroot (mmdebstrap, emulated; once)" >&2
    t0=$(now)
    rm -rf "$root.tmp"
    # No fsync per file (force-unsafe-io): the chroot is built aside and only moved into place once whole.
    nice -n 19 mmdebstrap --arch=arm64 --variant=apt --components=main \
      --include="$(IFS=,; echo "${pkgs[*]}")" --aptopt='Acquire::Check-Valid-Until "false"' \
      --dpkgopt=force-unsafe-io \
      "$suite" "$root.tmp" "$mirror" >&2
    rm -rf "$root" && mv "$root.tmp" "$root"
    echo $(($(now) - t0)) >"$root.done"
    echo "release-offline: chroot built in $(cat "$root.done") s" >&2
  fi
  stage="$(mktemp -d "$root/tmp/rigcam-offline.XXXXXX")"
  trap 'rm -rf "$stage"' EXIT
  cp /etc/resolv.conf "$root/etc/resolv.conf"
  # This machine's CA trust goes along: a network that inspects TLS has its own CA, and npm in the
  # chroot must trust the registry as npm here does.
  ca="${NODE_EXTRA_CA_CERTS:-/etc/ssl/certs/ca-certificates.crt}"
  [ -f "$ca" ] && cp "$ca" "$stage/ca.crt"
  # in_target DIR CMD...: run CMD in the chroot, in DIR (a path on this machine, under $root). A
  # private mount namespace holds /proc and /dev, so nothing stays mounted when it ends (even if killed).
  in_target() {
    local dir
    dir="$(tpath "$1")"
    shift
    # shellcheck disable=SC2016 # expanded by the inner bash
    nice -n 19 unshare --mount --propagation private -- bash -c '
      r=$1; shift
      mount -t proc proc "$r/proc" && mount --rbind /dev "$r/dev" && exec chroot "$r" "$@"' \
      _ "$root" /usr/bin/env -C "$dir" HOME=/root PATH=/usr/local/bin:/usr/bin:/bin \
      npm_config_cache="$(tpath "$stage")/npm-cache" ${ca_env:+"$ca_env"} "$@"
  }
  tpath() { echo "/${1#"$root"/}"; }
  ca_env=
  [ -f "$stage/ca.crt" ] && ca_env="NODE_EXTRA_CA_CERTS=$(tpath "$stage")/ca.crt"
fi

# --- The plain release, with node_modules for the target ------------------------------------------
RIGCAM_RELEASE_DIR="$stage/plain" bash scripts/release.sh >/dev/null
tar -xzf "$stage/plain/rigcam-$version.tar.gz" -C "$stage"
rel="$stage/rigcam-$version"

arch="$(in_target "$rel" node -p 'process.platform + "-" + process.arch')"
abi="$(in_target "$rel" node -p 'process.versions.modules')"
node_version="$(in_target "$rel" node --version)"
[ "$target" = native ] || [ "$arch" = "linux-$target" ] || die "the chroot's node is $arch, not linux-$target"
# What `file` says of a shared object of the target's CPU.
case "$arch" in
  linux-x64) file_arch=x86-64 ;;
  linux-arm64) file_arch=aarch64 ;;
  linux-arm) file_arch=ARM ;;
  *) die "unknown platform $arch: cannot check its native modules" ;;
esac

key="$( (sha256sum package-lock.json; echo "$arch $abi") | sha256sum | cut -c1-16)"
cached="$cache_root/$key/node_modules"
if [ ! -d "$cached" ]; then
  echo "release-offline: npm ci --omit=dev for $arch node ABI $abi" >&2
  t0=$(now)
  in_target "$rel" npm ci --omit=dev --no-audit --no-fund --loglevel=error >&2
  echo "release-offline: npm ci took $(($(now) - t0)) s" >&2
  mkdir -p "$cache_root/$key.tmp"
  cp -a "$rel/node_modules" "$cache_root/$key.tmp/"
  rm -rf "${cache_root:?}/$key" && mv "$cache_root/$key.tmp" "$cache_root/$key"
else
  cp -a "$cached" "$rel/"
fi

# --- Smoke run where it was built: any failure fails the build -------------------------------------
echo "release-offline: smoke run ($arch)" >&2
t0=$(now)
smoke="$stage/smoke"
mkdir "$smoke"
got="$(in_target "$rel" node bin/rigcam.js --version)"
[ "$got" = "$version" ] || die "smoke: rigcam --version printed '$got', not $version"
in_target "$rel" node bin/rigcam.js config check deploy/image/rigcam.default.yaml >&2 ||
  die "smoke: rigcam config check failed on deploy/image/rigcam.default.yaml"
in_target "$rel" node bin/rigcam.js record --source test --duration 2 --size 320x240 --fps 15 \
  --session smoke --data "$(tpath "$smoke")" >"$smoke/summary.json" ||
  die "smoke: rigcam record --source test failed"
# The recording's frames in its database and CSV (the paths its summary names), and the native modules
# this process loaded (every process.dlopen: the .node files actually picked, prebuilt or compiled).
in_target "$rel" node -e '
  const loaded = [];
  const dlopen = process.dlopen;
  process.dlopen = (m, file, ...rest) => { loaded.push(file); return dlopen(m, file, ...rest); };
  const fs = require("node:fs"), path = require("node:path");
  const summary = JSON.parse(fs.readFileSync(process.argv[1], "utf8"));
  if (!(summary.frames > 0)) throw new Error("the summary counts no frames: " + JSON.stringify(summary));
  const db = new (require("better-sqlite3"))(summary.db, { readonly: true, fileMustExist: true });
  const rows = db.prepare("select count(*) as n from frames where recording_id = ?").get(summary.recording_id).n;
  if (!(rows > 0)) throw new Error("no frames in the database for recording " + summary.recording_id);
  const csvRows = fs.readFileSync(summary.csv, "utf8").trim().split("\n").length - 1;
  if (!(csvRows > 0)) throw new Error("no frames in " + summary.csv);
  require("node-gyp-build")(path.dirname(require.resolve("@serialport/bindings-cpp/package.json")));
  const want = ["better_sqlite3.node", "bindings-cpp"];
  for (const w of want) if (!loaded.some((f) => f.includes(w))) throw new Error(w + " did not load: " + loaded);
  console.error("release-offline: smoke: " + summary.frames + " frames recorded, " + rows + " in the database, " + csvRows + " in the CSV");
  console.log(loaded.join("\n"));
' "$(tpath "$smoke")/summary.json" >"$smoke/loaded" || die "smoke: the recording or the native modules failed the check"
# The .node files that loaded, and every one compiled here, must be the target's CPU.
mapfile -t nodes < <(cat "$smoke/loaded"; cd "$rel" && find node_modules -path '*/build/Release/*.node' -printf "$(tpath "$rel")/%p\n")
for n in "${nodes[@]}"; do
  desc="$(file -bL "$root$n")"
  [[ "$desc" == *"$file_arch"* ]] || die "smoke: $n is not $file_arch: $desc"
  echo "release-offline: $n: $file_arch" >&2
done
rm -rf "$smoke"
echo "release-offline: smoke run took $(($(now) - t0)) s" >&2

printf '{"platform_arch":"%s","node_abi":%s,"node":"%s"}\n' "$arch" "$abi" "$node_version" >"$rel/OFFLINE"

name="rigcam-$version+offline-$arch-node$abi"
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct 2>/dev/null || date +%s)}"
mkdir -p "$out_dir"
# The folder inside keeps the plain release's name: the ansible role strips it.
tar --sort=name --owner=0 --group=0 --numeric-owner --mtime="@$epoch" -C "$stage" -cf - "rigcam-$version" |
  gzip -n -6 >"$out_dir/$name.tar.gz"
echo "$out_dir/$name.tar.gz"
