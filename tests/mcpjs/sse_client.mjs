// A real legacy HTTP+SSE client for the integration tests: the official
// TypeScript SDK's SSEClientTransport.
//
//   node sse_client.mjs URL < plan.json
//
// plan.json: {"headers": {...}, "calls": [{"name": "...", "arguments": {...}}, ...]}
// Connects to URL (the server's /sse), lists the tools, makes each call in
// order and prints one JSON object on stdout:
//   {"server": {...}, "tools": ["..."], "results": [{"name", "result"} | {"name", "error"}]}
// A failure to connect or list prints {"fatal": "..."} and exits 1.

import { Client } from "@modelcontextprotocol/sdk/client/index.js";
import { SSEClientTransport } from "@modelcontextprotocol/sdk/client/sse.js";

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  const text = Buffer.concat(chunks).toString("utf8").trim();
  return text ? JSON.parse(text) : {};
}

async function main() {
  const url = process.argv[2];
  if (!url) throw new Error("usage: node sse_client.mjs URL < plan.json");
  const plan = await readStdin();
  const headers = plan.headers ?? {};
  const transport = new SSEClientTransport(new URL(url), {
    // POSTs carry requestInit's headers; the stream's GET gets them from
    // this fetch too (the SDK also merges requestInit.headers into it).
    requestInit: { headers },
    eventSourceInit: {
      fetch: (input, init) => {
        const merged = new Headers(init?.headers ?? {});
        for (const [k, v] of Object.entries(headers)) merged.set(k, v);
        return fetch(input, { ...init, headers: merged });
      },
    },
  });
  const client = new Client({ name: "mcp-prometheus-sse-test", version: "1.0.0" });
  await client.connect(transport);
  const out = { server: client.getServerVersion(), tools: [], results: [] };
  const listed = await client.listTools();
  out.tools = listed.tools.map((t) => t.name);
  for (const call of plan.calls ?? []) {
    try {
      const result = await client.callTool(
        { name: call.name, arguments: call.arguments ?? {} },
        undefined,
        { timeout: 30000 },
      );
      out.results.push({ name: call.name, result });
    } catch (e) {
      out.results.push({ name: call.name, error: String(e?.message ?? e) });
    }
  }
  await client.close();
  process.stdout.write(JSON.stringify(out) + "\n");
}

main().catch((e) => {
  process.stdout.write(JSON.stringify({ fatal: String(e?.stack ?? e) }) + "\n");
  process.exit(1);
});
