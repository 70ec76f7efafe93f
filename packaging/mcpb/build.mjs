// Builds the MCP Bundle of mcp-prometheus with the official tool:
//   node packaging/mcpb/build.mjs BINARY OUT.mcpb
// The manifest is generated, not kept by hand: the version from
// `BINARY version`, the tools from `BINARY tools` (so the list cannot drift
// from tools/list), the platform from this machine (the binary is native).
// The bundle runs `mcp-prometheus serve --transport stdio`; the user's
// Prometheus URL, bearer token and Mimir tenant reach it as the
// PROMETHEUS_URL / PROMETHEUS_TOKEN / PROMETHEUS_ORGID environment variables
// (src/config/env.rs), where an empty value counts as unset.
import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const [binaryArg, outArg] = process.argv.slice(2);
if (!binaryArg || !outArg) {
  console.error("usage: node build.mjs BINARY OUT.mcpb");
  process.exit(2);
}
const binary = resolve(binaryArg);
const out = resolve(outArg);
const stage = join(dirname(out), "mcpb");
const mcpb = join(here, "node_modules", ".bin", "mcpb");

const run = (file, args) => execFileSync(file, args, { encoding: "utf8" });

// "mcp-prometheus 0.1.0 (revision …, built …)"
const versionLine = run(binary, ["version"]).trim();
const version = versionLine.split(" ")[1];
if (!/^\d+\.\d+\.\d+/.test(version ?? "")) {
  throw new Error(`cannot read a version from ${JSON.stringify(versionLine)}`);
}
const tools = JSON.parse(run(binary, ["tools"])).map((t) => ({
  name: t.name,
  description: t.description,
}));
const platform = { linux: "linux", darwin: "darwin", win32: "win32" }[process.platform];
if (!platform) throw new Error(`no MCP Bundle platform for ${process.platform}`);

const manifest = {
  manifest_version: "0.3",
  name: "mcp-prometheus",
  display_name: "Prometheus",
  version,
  description:
    "Read-only access to Prometheus, Thanos and Grafana Mimir: PromQL queries, metric and label discovery, alerts, rules and targets.",
  long_description: [
    "Lets the assistant query a Prometheus-compatible API (Prometheus, Thanos, Grafana Mimir, VictoriaMetrics) without write access: instant and range PromQL queries, metric names, labels and series, metadata, alerts, rules, scrape targets and server status.",
    "",
    "Queries are checked before they run (guardrails against selectors matching too many series), answers are truncated to a size an assistant can use, and nothing can be written or deleted.",
    "",
    `Built from ${versionLine}.`,
  ].join("\n"),
  author: { name: "mcp-prometheus contributors", url: "https://github.com/giantswarm/mcp-prometheus" },
  repository: { type: "git", url: "https://github.com/giantswarm/mcp-prometheus" },
  homepage: "https://github.com/giantswarm/mcp-prometheus",
  license: "Apache-2.0",
  keywords: ["prometheus", "promql", "mimir", "thanos", "monitoring", "metrics", "alerts"],
  server: {
    type: "binary",
    entry_point: "server/mcp-prometheus",
    mcp_config: {
      command: "${__dirname}/server/mcp-prometheus",
      // An ephemeral loopback port for /metrics and /healthz: a desktop
      // machine may run something else on 9091.
      args: ["serve", "--transport", "stdio", "--observability-listen", "127.0.0.1:0"],
      env: {
        PROMETHEUS_URL: "${user_config.prometheus_url}",
        PROMETHEUS_TOKEN: "${user_config.prometheus_token}",
        PROMETHEUS_ORGID: "${user_config.prometheus_org_id}",
      },
    },
  },
  tools,
  compatibility: { platforms: [platform] },
  user_config: {
    prometheus_url: {
      type: "string",
      title: "Prometheus URL",
      description:
        "Base URL of the Prometheus-compatible API, e.g. http://localhost:9090 or https://mimir.example.com/prometheus",
      required: true,
      default: "http://localhost:9090",
    },
    // Optional fields default to "" so hosts substitute an empty value
    // (which the server ignores) rather than leaving the placeholder.
    prometheus_token: {
      type: "string",
      title: "Bearer token",
      description: "Sent as Authorization: Bearer to Prometheus. Leave empty for none.",
      required: false,
      sensitive: true,
      default: "",
    },
    prometheus_org_id: {
      type: "string",
      title: "Tenant (Mimir X-Scope-OrgID)",
      description: "Grafana Mimir / Cortex tenant to query. Leave empty for Prometheus.",
      required: false,
      default: "",
    },
  },
};

rmSync(stage, { recursive: true, force: true });
mkdirSync(join(stage, "server"), { recursive: true });
copyFileSync(binary, join(stage, "server", "mcp-prometheus"));
chmodSync(join(stage, "server", "mcp-prometheus"), 0o755);
writeFileSync(join(stage, "manifest.json"), JSON.stringify(manifest, null, 2) + "\n");

// The official checks, then the official packer.
execFileSync(mcpb, ["validate", join(stage, "manifest.json")], { stdio: "inherit" });
rmSync(out, { force: true });
execFileSync(mcpb, ["pack", stage, out], { stdio: "inherit" });
console.error(`[bundle] wrote ${out}: ${tools.length} tools, ${versionLine}`);
