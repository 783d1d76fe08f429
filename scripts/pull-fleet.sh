#!/bin/bash
# Pull every box's new recordings to this server and mark each one offloaded only once its copy is confirmed.
#
#   scripts/pull-fleet.sh INVENTORY DEST
#
# INVENTORY: one box per line, "NAME SSH_TARGET API_URL [TOKEN_FILE]" ('#' starts a comment):
#   NAME        a folder name for the box under DEST (letters, digits, . _ -)
#   SSH_TARGET  what ssh/rsync log in to, e.g. rigcam@box1.lab (must be able to read the recordings root)
#   API_URL     the box's HTTP API as this server reaches it, e.g. http://box1.lab:8080 (a box listening on loopback
#               only: forward a port first, `ssh -fNL 18080:127.0.0.1:8080 box1`, and give http://127.0.0.1:18080)
#   TOKEN_FILE  a file holding the box's http.token (optional; RIGCAM_TOKEN is used when there is none)
#
# For each box: fetch GET /api/offload/manifest (finished recordings not yet offloaded: paths, sizes and the SHA-256
# computed on the box when each file was closed); rsync those files over SSH into DEST/NAME/ (--partial: an
# interrupted transfer is resumed by the next run); compute sha256sum over the copy; and only when every file of a
# recording matches, POST /api/recordings/ID/offloaded with the hashes of the copy (the box checks them again).
# A file whose copy does not match is deleted here, so the next run fetches it again; nothing is marked for it.
# Exit status: 0 when every box answered and every recording offered was confirmed, 1 otherwise.
#
# Environment: RIGCAM_SSH (the ssh command, default "ssh -o BatchMode=yes"), RIGCAM_RSYNC (default rsync),
# RIGCAM_RSYNC_OPTS (extra rsync options, e.g. "--bwlimit=20m"), RIGCAM_TOKEN.
set -uo pipefail

usage() { echo "usage: $0 INVENTORY DEST" >&2; exit 2; }
[ $# -eq 2 ] || usage
inventory=$1
dest=$2
[ -r "$inventory" ] || { echo "pull-fleet: cannot read inventory $inventory" >&2; exit 2; }
mkdir -p "$dest" || exit 2
ssh_cmd=${RIGCAM_SSH:-ssh -o BatchMode=yes}
rsync_cmd=${RIGCAM_RSYNC:-rsync}
failed=0

# Relative paths as the box writes them: <session>/<file>, letters, digits, . _ - only (nothing to quote, no "..").
safe_path() { [[ $1 =~ ^[A-Za-z0-9][A-Za-z0-9._-]*/[A-Za-z0-9][A-Za-z0-9._-]*$ ]] && [[ $1 != *..* ]]; }

pull_box() {
  local name=$1 target=$2 api=${3%/} token_file=${4:-}
  local token=${RIGCAM_TOKEN:-}
  if [ -n "$token_file" ]; then token=$(tr -d '[:space:]' <"$token_file") || { echo "$name: cannot read $token_file"; return 1; }; fi
  local auth=()
  [ -n "$token" ] && auth=(-H "Authorization: Bearer $token")
  local box_dir="$dest/$name" work
  mkdir -p "$box_dir" || return 1
  work=$(mktemp -d) || return 1
  # shellcheck disable=SC2064 # expand now: the function's own temporary folder
  trap "rm -rf '$work'" RETURN

  if ! curl -fsS --max-time 60 "${auth[@]}" "$api/api/offload/manifest?format=tsv" -o "$work/manifest.tsv"; then
    echo "$name: manifest not fetched from $api"
    return 1
  fi
  local root
  root=$(sed -n '1s/^# recordings_root=//p' "$work/manifest.tsv")
  [ -n "$root" ] || { echo "$name: not a rigcam manifest"; return 1; }
  tail -n +2 "$work/manifest.tsv" | grep -v '^$' >"$work/files.tsv"
  if [ ! -s "$work/files.tsv" ]; then
    echo "$name: nothing to offload"
    return 0
  fi
  local id sum rel
  while IFS=$'\t' read -r _ _ _ _ rel; do
    safe_path "$rel" || { echo "$name: refusing path '$rel' from the manifest"; return 1; }
    printf '%s\n' "$rel"
  done <"$work/files.tsv" >"$work/files.txt"

  # shellcheck disable=SC2086 # RIGCAM_RSYNC_OPTS is a list of options
  if ! $rsync_cmd -a --partial --files-from="$work/files.txt" -e "$ssh_cmd" ${RIGCAM_RSYNC_OPTS:-} "$target:$root/" "$box_dir/"; then
    echo "$name: rsync failed (what arrived is kept; the next run resumes it)"
  fi

  # Confirm each recording file by file, then mark it with the hashes of the copy.
  local rc=0 ok=0 bad=0 ids
  ids=$(cut -f1 "$work/files.tsv" | sort -un)
  for id in $ids; do
    local json="" good=1
    while IFS=$'\t' read -r _ _ _ sum rel; do
      local copy="$box_dir/$rel" have=""
      [ -f "$copy" ] && have=$(sha256sum "$copy" | cut -d' ' -f1)
      if [ "$have" != "$sum" ]; then
        echo "$name: recording $id: $rel: copy ${have:-missing} does not match the box's $sum: not marked"
        rm -f "$copy"
        good=0
      fi
      json+="${json:+,}\"$rel\":\"$have\""
    done < <(awk -F'\t' -v id="$id" '$1 == id' "$work/files.tsv")
    if [ $good -ne 1 ]; then bad=$((bad + 1)); rc=1; continue; fi
    local answer
    if answer=$(curl -sS --max-time 60 "${auth[@]}" -H 'Content-Type: application/json' -o - -w '\n%{http_code}' \
      --data-binary "{\"sha256\":{$json}}" "$api/api/recordings/$id/offloaded"); then
      if [ "${answer##*$'\n'}" = 200 ]; then ok=$((ok + 1)); continue; fi
    fi
    echo "$name: recording $id: the box did not mark it: ${answer%$'\n'*}"
    bad=$((bad + 1))
    rc=1
  done
  echo "$name: $ok recording(s) copied, verified and marked offloaded; $bad not"
  return $rc
}

while read -r name target api token_file _; do
  [[ -z ${name:-} || $name == \#* ]] && continue
  if [[ ! $name =~ ^[A-Za-z0-9][A-Za-z0-9._-]*$ || -z ${api:-} ]]; then
    echo "pull-fleet: bad inventory line for '$name' (NAME SSH_TARGET API_URL [TOKEN_FILE])" >&2
    failed=1
    continue
  fi
  pull_box "$name" "$target" "$api" "${token_file:-}" </dev/null || failed=1
done <"$inventory"
exit $failed
