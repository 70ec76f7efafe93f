# syntax=docker/dockerfile:1
#
# mcp-prometheus container image: a release build on Debian bookworm, run on
# distroless (glibc, CA certificates, no shell) as the nonroot user 65532.
#
#   docker build -t ghcr.io/giantswarm/mcp-prometheus:$(version) .
#
# The Helm chart's image defaults to ghcr.io/giantswarm/mcp-prometheus:<appVersion>
# (chart/Chart.yaml appVersion = the version in Cargo.toml), so tag releases
# with the bare version (0.1.0, no "v").

ARG RUST_VERSION=1

FROM rust:${RUST_VERSION}-bookworm AS builder
# aws-lc-sys (rustls' crypto provider) builds C code; cmake covers the
# versions whose build script still wants it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends cmake \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
# The whole workspace (every member's manifest is needed to resolve it);
# .dockerignore keeps out target/, tests, docs, the chart and the venvs.
COPY . .
# Cache mounts keep the registry and compiled dependencies between builds.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/usr/local/cargo/git \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin mcp-prometheus \
 && install -D -m 0755 target/release/mcp-prometheus /out/mcp-prometheus \
 && /out/mcp-prometheus version

FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="mcp-prometheus" \
      org.opencontainers.image.description="MCP server giving AI assistants read-only access to Prometheus and Grafana Mimir" \
      org.opencontainers.image.source="https://github.com/giantswarm/mcp-prometheus" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/mcp-prometheus /usr/local/bin/mcp-prometheus
# The built-in defaults listen on loopback; in a container listen on all
# addresses (a --config file or the chart's ConfigMap sets its own).
USER 65532:65532
EXPOSE 8080 9091
ENTRYPOINT ["/usr/local/bin/mcp-prometheus"]
CMD ["serve", "--listen", "0.0.0.0:8080", "--observability-listen", "0.0.0.0:9091"]
