#!/usr/bin/env bash
# Stages the root filesystem of the mcp-prometheus image, as two layers:
#   scripts/stage-rootfs.sh BINARY DEST
#   DEST/runtime/  what any build of the binary needs, and rarely changes:
#                  exactly the shared libraries in the binary's dynamic
#                  section (NEEDED, recursively) and its ELF interpreter, at
#                  the paths the loader looks them up; the CA bundle at
#                  /etc/ssl/certs/ca-certificates.crt (found there by
#                  rustls-native-certs); /etc/passwd and /etc/group with root
#                  and the non-root user nonroot (65532); an nsswitch.conf
#                  (hosts: files dns); /tmp (1777)
#   DEST/app/      /usr/local/bin/mcp-prometheus
# Both `make image` (buildah, FROM scratch) and the Dockerfile's final stage
# (FROM scratch) are these two directories, so both images have the same
# file system by construction. Everything is owned by root; nothing but
# /tmp is writable. Needs readelf (binutils), ldd (libc-bin) and the CA
# bundle (ca-certificates); installs what is missing on Debian.
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" stage-rootfs
(($# == 2)) || { log "usage: $0 BINARY DEST"; exit 2; }
binary=$1
dest=$2
[[ -x $binary ]] || { log "$binary is not an executable"; exit 1; }

ca_bundle=/etc/ssl/certs/ca-certificates.crt
need=()
command -v readelf >/dev/null 2>&1 || need+=(binutils)
[[ -s $ca_bundle ]] || need+=(ca-certificates)
if ((${#need[@]})); then
    "$repo/scripts/apt-install.sh" "${need[@]}"
fi

rm -rf "$dest"
runtime="$dest/runtime"
app="$dest/app"
mkdir -p "$runtime" "$app/usr/local/bin"
install -m 0755 "$binary" "$app/usr/local/bin/mcp-prometheus"

# --- shared libraries -------------------------------------------------------
# NEEDED names (recursively) resolved to paths the way the loader does
# (ldd's "name => path" lines), plus the interpreter (PT_INTERP).
interp="$(readelf -l "$binary" | sed -n 's/.*Requesting program interpreter: \(.*\)]/\1/p')"
declare -A where=()
while read -r name arrow path _; do
    [[ $arrow == "=>" && $path == /* ]] && where[$name]=$path
done < <(ldd "$binary" 2>/dev/null || true)

# stage_file HOSTPATH: copies the file (symlinks followed) to the same path
# in the runtime tree, or re-creates a symlink whose target is absolute, as
# /lib64/ld-linux-x86-64.so.2 is on Debian.
stage_file() {
    local path=$1 target
    [[ -e "$runtime$path" || -L "$runtime$path" ]] && return 0
    mkdir -p "$runtime$(dirname "$path")"
    if [[ -L $path ]] && target="$(readlink "$path")" && [[ $target == /* ]]; then
        stage_file "$target"
        ln -s "$target" "$runtime$path"
    else
        cp -L --preserve=mode "$path" "$runtime$path"
    fi
}

declare -A seen=()
queue=()
needed() { readelf -d "$1" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p'; }
mapfile -t queue < <(needed "$binary")
libs=()
while ((${#queue[@]})); do
    name=${queue[0]}
    queue=("${queue[@]:1}")
    [[ -n ${seen[$name]:-} ]] && continue
    seen[$name]=1
    path=${where[$name]:-}
    if [[ -z $path && -n $interp && $name == "$(basename "$interp")" ]]; then
        path=$interp
    fi
    [[ -n $path && -e $path ]] || { log "cannot resolve $name (NEEDED by the binary or its libraries)"; exit 1; }
    libs+=("$path")
    mapfile -t -O "${#queue[@]}" queue < <(needed "$path")
done
[[ -z $interp ]] || stage_file "$interp"
for lib in "${libs[@]}"; do
    stage_file "$lib"
done

# --- certificates, users, name service, /tmp -------------------------------
mkdir -p "$runtime/etc/ssl/certs"
install -m 0644 "$ca_bundle" "$runtime$ca_bundle"
printf '%s\n' 'root:x:0:0:root:/root:/sbin/nologin' \
    'nonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin' >"$runtime/etc/passwd"
printf '%s\n' 'root:x:0:' 'nonroot:x:65532:' >"$runtime/etc/group"
# /etc/hosts before DNS (Kubernetes hostAliases, localhost).
printf '%s\n' 'hosts: files dns' >"$runtime/etc/nsswitch.conf"
chmod 0644 "$runtime/etc/passwd" "$runtime/etc/group" "$runtime/etc/nsswitch.conf"
mkdir -p "$runtime/tmp"
chmod 1777 "$runtime/tmp"

log "staged $dest: interpreter ${interp:-none (static)}, ${#libs[@]} libraries: $(printf '%s ' "${libs[@]##*/}")"
