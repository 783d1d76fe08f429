#!/bin/bash
# rigcam first-boot settings: run by rigcam-firstboot.service before rigcam.service, as root.
# Moves what a lab wrote on the FAT boot partition into the root file system:
#   rigcam.yaml -> /etc/rigcam/rigcam.yaml (whole config, checked first when the app can run)
#   rigcam.txt  -> hostname, http.token / http.host / http.port, extra SSH keys (see rigcam.txt.example)
# Both files are deleted afterwards: they may hold the API token. A summary without secrets is left
# as rigcam.txt.applied. Also makes sure the admin user exists and, on an image built with
# --skip-packages, installs the packages and node modules (needs the network).
#
# RIGCAM_ROOT=/some/dir runs it against a root tree instead of / (tests, or a mounted image):
# then nothing live is touched (no hostname call, no apt, no npm, no useradd outside the tree).
set -euo pipefail

ROOT="${RIGCAM_ROOT:-}"
ROOT="${ROOT%/}"
CONF="$ROOT/etc/rigcam/rigcam.yaml"
APP="$ROOT/opt/rigcam/current"
ADMIN_FILE="$ROOT/etc/rigcam/admin-user"
KEYS_DIR="$ROOT/etc/ssh/authorized_keys"

log() { echo "rigcam-firstboot: $*"; }
err() { echo "rigcam-firstboot: error: $*" >&2; }

# Raspberry Pi OS mounts the boot partition at /boot/firmware (bookworm and later), older at /boot.
BOOT="$ROOT/boot/firmware"
[ -e "$BOOT/config.txt" ] || [ -e "$BOOT/rigcam.txt" ] || [ -e "$BOOT/rigcam.yaml" ] || BOOT="$ROOT/boot"

status=0

# set_http KEY VALUE: sets http.KEY in the config, adding the key (or the http block) when missing.
set_http() {
  local key="$1" value="$2" tmp
  tmp="$(mktemp "$CONF.XXXXXX")"
  awk -v key="$key" -v value="$value" '
    function put() { print "  " key ": " value; done = 1 }
    /^http:[[:space:]]*$/ { inhttp = 1; print; next }
    inhttp && /^[^[:space:]#]/ { if (!done) put(); inhttp = 0 }
    inhttp && $0 ~ "^  " key ":" { if (!done) put(); next }
    { print }
    END { if (inhttp && !done) put(); else if (!done) { print "http:"; put() } }
  ' "$CONF" >"$tmp"
  cat "$tmp" >"$CONF"
  rm -f "$tmp"
}

# The app can check a config only once its node modules are installed.
app_can_run() { [ -z "$ROOT" ] && [ -d "$APP/node_modules" ] && command -v node >/dev/null; }

secure_config() {
  [ -f "$CONF" ] || return 0
  chmod 0640 "$CONF"
  local gid
  gid="$(awk -F: '$1 == "rigcam" { print $3 }' "$ROOT/etc/group" 2>/dev/null || true)"
  [ -n "$gid" ] && chown "0:$gid" "$CONF"
  return 0
}

apply_yaml() {
  local src="$BOOT/rigcam.yaml"
  [ -f "$src" ] || return 0
  if app_can_run && ! node "$APP/bin/rigcam.js" config check "$src"; then
    err "rigcam.yaml on the boot partition is invalid; kept the current config, see rigcam.yaml.invalid"
    mv -f "$src" "$BOOT/rigcam.yaml.invalid"
    status=1
    return 0
  fi
  mkdir -p "$(dirname "$CONF")"
  cp "$src" "$CONF"
  rm -f "$src"
  log "installed rigcam.yaml from the boot partition as /etc/rigcam/rigcam.yaml"
  echo "rigcam.yaml: installed as /etc/rigcam/rigcam.yaml" >>"$BOOT/rigcam.txt.applied"
}

set_hostname() {
  local name="$1"
  if ! [[ "$name" =~ ^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$ ]]; then
    err "hostname '$name': letters, digits and '-' only, at most 63; ignored"
    status=1
    return 0
  fi
  echo "$name" >"$ROOT/etc/hostname"
  if grep -q '^127\.0\.1\.1[[:space:]]' "$ROOT/etc/hosts" 2>/dev/null; then
    sed -i "s/^127\.0\.1\.1[[:space:]].*/127.0.1.1\t$name/" "$ROOT/etc/hosts"
  else
    printf '127.0.1.1\t%s\n' "$name" >>"$ROOT/etc/hosts"
  fi
  [ -z "$ROOT" ] && hostname "$name"
  log "hostname set to $name"
  echo "hostname=$name" >>"$BOOT/rigcam.txt.applied"
}

add_ssh_key() {
  local key="$1" admin
  admin="$(cat "$ADMIN_FILE" 2>/dev/null || true)"
  if [ -z "$admin" ]; then err "ssh_key given but no admin user is configured; ignored"; status=1; return 0; fi
  if ! [[ "$key" =~ ^(ssh-|ecdsa-|sk-)[A-Za-z0-9@.-]+\ [A-Za-z0-9+/=]+ ]]; then
    err "ssh_key does not look like an OpenSSH public key; ignored"
    status=1
    return 0
  fi
  mkdir -p "$KEYS_DIR"
  touch "$KEYS_DIR/$admin"
  grep -qxF "$key" "$KEYS_DIR/$admin" || echo "$key" >>"$KEYS_DIR/$admin"
  chmod 0644 "$KEYS_DIR/$admin"
  log "SSH key added for $admin"
  echo "ssh_key=${key%% *} ... (added for $admin)" >>"$BOOT/rigcam.txt.applied"
}

apply_txt() {
  local src="$BOOT/rigcam.txt" line key value token="" listen="" port=""
  [ -f "$src" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    line="${line%$'\r'}"
    [[ "$line" =~ ^[[:space:]]*(#|$) ]] && continue
    key="${line%%=*}"
    value="${line#*=}"
    key="${key//[[:space:]]/}"
    value="$(echo "$value" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//')"
    case "$key" in
      hostname) set_hostname "$value" ;;
      token) token="$value" ;;
      listen) listen="$value" ;;
      port) port="$value" ;;
      ssh_key) add_ssh_key "$value" ;;
      *) err "rigcam.txt: unknown setting '$key' ignored"; status=1 ;;
    esac
  done <"$src"

  if [ -n "$token$listen$port" ] && [ ! -f "$CONF" ]; then
    err "no $CONF to put http settings in"
    status=1
  elif [ -n "$token$listen$port" ]; then
    if [ -n "$token" ]; then
      if [[ "$token" =~ ^[A-Za-z0-9._~+/=-]{16,}$ ]]; then
        set_http token "'$token'"
        [ -n "$listen" ] || listen=0.0.0.0
        log "API token set"
        echo "token=(set, not shown)" >>"$BOOT/rigcam.txt.applied"
      else
        err "token: at least 16 of letters, digits, . _ ~ + / = -; ignored"
        status=1
      fi
    fi
    if [ -n "$listen" ]; then
      if [[ "$listen" =~ ^[0-9A-Fa-f.:]+$ ]]; then
        set_http host "'$listen'"
        echo "listen=$listen" >>"$BOOT/rigcam.txt.applied"
      else
        err "listen: an IP address like 0.0.0.0; ignored"
        status=1
      fi
    fi
    if [ -n "$port" ]; then
      if [[ "$port" =~ ^[0-9]{1,5}$ ]] && [ "$port" -le 65535 ]; then
        set_http port "$port"
        echo "port=$port" >>"$BOOT/rigcam.txt.applied"
      else
        err "port: a number 1-65535; ignored"
        status=1
      fi
    fi
  fi
  rm -f "$src"
}

ensure_admin() {
  local admin groups g
  admin="$(cat "$ADMIN_FILE" 2>/dev/null || true)"
  [ -n "$admin" ] || return 0
  grep -q "^$admin:" "$ROOT/etc/passwd" && return 0
  # Usually created already from userconf.txt by Raspberry Pi OS's own first boot; this is the fallback.
  groups=""
  for g in sudo adm video gpio dialout plugdev; do
    grep -q "^$g:" "$ROOT/etc/group" && groups="${groups:+$groups,}$g"
  done
  if [ -z "$ROOT" ]; then
    useradd --create-home --shell /bin/bash ${groups:+--groups "$groups"} "$admin"
  else
    useradd --prefix "$ROOT" --shell /bin/bash ${groups:+--groups "$groups"} "$admin"
  fi
  log "created admin user $admin"
}

install_packages() {
  [ -d "$APP/node_modules" ] && return 0
  if [ -n "$ROOT" ]; then log "not installing packages into $ROOT (only on the box itself)"; return 0; fi
  local list="$APP/deploy/image/packages.txt"
  log "image built with --skip-packages: installing $(grep -v '^#' "$list" | xargs) and the node modules"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  # shellcheck disable=SC2046
  apt-get install -y --no-install-recommends $(grep -v '^#' "$list")
  local major
  major="$(node -p 'process.versions.node.split(".")[0]')"
  if [ "$major" -lt 20 ]; then err "Node.js $major is too old (rigcam needs 20+); see deploy/README.md"; return 1; fi
  (cd "$APP" && npm ci --omit=dev --no-audit --no-fund)
}

mkdir -p "$BOOT" 2>/dev/null || true
apply_yaml
apply_txt
ensure_admin
secure_config
install_packages || status=1
exit "$status"
