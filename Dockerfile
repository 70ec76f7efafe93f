# syntax=docker/dockerfile:1
#
# mcp-prometheus container image, for builders with registry access: a
# release build on Debian bookworm, then FROM scratch with the file system
# scripts/stage-rootfs.sh stages (the binary, exactly the shared libraries
# it links, the CA bundle, /etc/passwd with the non-root user 65532, /tmp).
# `make image` builds the same two layers from the same script with buildah,
# without a daemon or any pull (README "Container image").
#
#   docker build --build-arg REVISION=$(git rev-parse HEAD) \
#     --build-arg SOURCE_DATE_EPOCH=$(git log -1 --format=%ct) \
#     -t REGISTRY/mcp-prometheus:$(version) .
#
# The Helm chart's image is <image.registry>/mcp-prometheus:<appVersion>
# (chart/Chart.yaml appVersion = the version in Cargo.toml), so tag releases
# with the bare version (0.1.0, no "v").

ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-bookworm AS builder
# The build context has no .git: `mcp-prometheus version` names this
# revision (build.rs), and the build date comes from SOURCE_DATE_EPOCH.
ARG REVISION=unknown
ARG SOURCE_DATE_EPOCH
# aws-lc-sys (rustls' crypto provider) builds C code; cmake covers the
# versions whose build script still wants it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace (every member's manifest is needed to resolve it);
# .dockerignore keeps out target/, the tests but tests/rmcp-oauth-client,
# docs, the chart and the venvs.
COPY . .
# Cache mounts keep the registry and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    MCP_PROMETHEUS_REVISION="$REVISION" cargo build --release --locked --bin mcp-prometheus \
 && install -D -m 0755 target/release/mcp-prometheus /out/mcp-prometheus \
 && /out/mcp-prometheus version
RUN scripts/stage-rootfs.sh /out/mcp-prometheus /rootfs

FROM scratch
ARG REVISION=unknown
COPY --from=builder /rootfs/runtime/ /
COPY --from=builder /rootfs/app/ /
LABEL org.opencontainers.image.title="mcp-prometheus" \
      org.opencontainers.image.description="MCP server giving AI assistants authenticated, tenant-scoped, read-only access to Prometheus and Grafana Mimir" \
      org.opencontainers.image.source="https://github.com/giantswarm/mcp-prometheus" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0"
USER 65532:65532
EXPOSE 8080 9091
# The built-in defaults listen on loopback; in a container listen on all
# addresses (a --config file or the chart's ConfigMap sets its own).
ENTRYPOINT ["/usr/local/bin/mcp-prometheus", "serve"]
CMD ["--listen", "0.0.0.0:8080", "--observability-listen", "0.0.0.0:9091"]
