#!/usr/bin/env bash
# Builds the mcp-prometheus OCI image without a container daemon and without
# pulling anything: buildah (Debian package) assembles FROM scratch the two
# layers staged by scripts/stage-rootfs.sh, sets the entrypoint, user and
# labels, and writes an OCI archive.
#   scripts/build-image.sh BINARY [OUT]      (OUT: target/mcp-prometheus.oci.tar)
# Environment: IMAGE_NAME (mcp-prometheus), IMAGE_TAG (the Cargo version),
# IMAGE_SOURCE (the repository URL of the labels), SOURCE_DATE_EPOCH (the
# image and file times; default: the last commit's time, so rebuilding the
# same binary gives the same digest).
#
# Push it with skopeo, e.g.
#   skopeo copy oci-archive:target/mcp-prometheus.oci.tar docker://REGISTRY/mcp-prometheus:TAG
set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh" image
(($# >= 1)) || { log "usage: $0 BINARY [OUT]"; exit 2; }
binary=$1
out="${2:-$repo/target/mcp-prometheus.oci.tar}"

need=()
command -v buildah >/dev/null 2>&1 || need+=(buildah)
command -v skopeo >/dev/null 2>&1 || need+=(skopeo)
if ((${#need[@]})); then
    "$repo/scripts/apt-install.sh" "${need[@]}"
fi

version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$repo/Cargo.toml" | head -1)"
name="${IMAGE_NAME:-mcp-prometheus}"
tag="${IMAGE_TAG:-$version}"
source_url="${IMAGE_SOURCE:-https://github.com/giantswarm/mcp-prometheus}"
# The revision the binary says it was built from (build.rs), not the tree's.
revision="$("$binary" version | sed -n 's/.*(revision \([^,]*\),.*/\1/p')"
[[ -n $revision ]] || { log "$binary version names no revision"; exit 1; }
epoch="${SOURCE_DATE_EPOCH:-$(git -C "$repo" log -1 --format=%ct 2>/dev/null || date +%s)}"
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch="$(uname -m)" ;; esac
created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"

# Scratch space beside the archive (two builds to different archives do not meet).
work="${out%.tar}.build"
stage="$work/stage"
"$repo/scripts/stage-rootfs.sh" "$binary" "$stage"

# One tar per layer: root-owned, sorted, every time the commit's (a layer's
# digest then depends on its content only).
layer_tar() {
    tar --create --file "$2" --directory "$1" --sort=name --numeric-owner --owner=0 --group=0 \
        --mtime="@$epoch" --format=posix --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime .
}
layer_tar "$stage/runtime" "$work/runtime.tar"
layer_tar "$stage/app" "$work/app.tar"

# A private, throw-away store: vfs needs no kernel overlay support, chroot
# isolation no runtime (nothing is run).
rm -rf "$work/storage" "$work/run"
bah() { buildah --root "$work/storage" --runroot "$work/run" --storage-driver vfs "$@"; }
export BUILDAH_ISOLATION=chroot

base="$(bah from scratch)"
bah add --quiet "$base" "$work/runtime.tar" /
bah config --created-by "scripts/stage-rootfs.sh: runtime (libraries, CA bundle, users, /tmp)" "$base"
bah commit --quiet --timestamp "$epoch" --identity-label=false "$base" "localhost/$name-runtime:$tag" >/dev/null
bah rm "$base" >/dev/null

ctr="$(bah from "localhost/$name-runtime:$tag")"
bah add --quiet "$ctr" "$work/app.tar" /
bah config \
    --created-by "scripts/stage-rootfs.sh: app (/usr/local/bin/mcp-prometheus)" \
    --entrypoint '["/usr/local/bin/mcp-prometheus", "serve"]' \
    --cmd '["--listen", "0.0.0.0:8080", "--observability-listen", "0.0.0.0:9091"]' \
    --user 65532:65532 \
    --workingdir / \
    --port 8080/tcp --port 9091/tcp \
    --os linux --arch "$arch" \
    --label "org.opencontainers.image.title=mcp-prometheus" \
    --label "org.opencontainers.image.description=MCP server giving AI assistants authenticated, tenant-scoped, read-only access to Prometheus and Grafana Mimir" \
    --label "org.opencontainers.image.source=$source_url" \
    --label "org.opencontainers.image.version=$version" \
    --label "org.opencontainers.image.revision=$revision" \
    --label "org.opencontainers.image.created=$created" \
    --label "org.opencontainers.image.licenses=Apache-2.0" \
    "$ctr"
bah commit --quiet --timestamp "$epoch" --identity-label=false "$ctr" "localhost/$name:$tag" >/dev/null
bah rm "$ctr" >/dev/null

mkdir -p "$(dirname "$out")"
rm -f "$out"
bah push --quiet "localhost/$name:$tag" "oci-archive:$out:$name:$tag"
rm -rf "$work"

log "wrote $out ($(du -h "$out" | cut -f1)), $name:$tag, revision $revision"
skopeo inspect --format '{{range .Layers}}{{println .}}{{end}}' "oci-archive:$out" >&2
