// What an MCP Bundle host runs for an installed bundle, computed by the
// official library's own resolution (getMcpConfigForManifest: platform
// overrides, user_config defaults, ${…} substitution):
//   node packaging/mcpb/launch-config.mjs UNPACKED_DIR '{"prometheus_url": "…"}'
// prints {command, args, env} as JSON, or exits 1 when the host would refuse
// to start the server (a required field missing). The bundle test starts the
// server exactly this way.
import { readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join, resolve, sep } from "node:path";

import { getMcpConfigForManifest } from "@anthropic-ai/mcpb";

const [dirArg, userConfigArg] = process.argv.slice(2);
if (!dirArg) {
  console.error("usage: node launch-config.mjs UNPACKED_DIR [USER_CONFIG_JSON]");
  process.exit(2);
}
const dir = resolve(dirArg);
const manifest = JSON.parse(readFileSync(join(dir, "manifest.json"), "utf8"));
const home = homedir();
const config = await getMcpConfigForManifest({
  manifest,
  extensionPath: dir,
  systemDirs: {
    HOME: home,
    DESKTOP: join(home, "Desktop"),
    DOCUMENTS: join(home, "Documents"),
    DOWNLOADS: join(home, "Downloads"),
  },
  userConfig: JSON.parse(userConfigArg ?? "{}"),
  pathSeparator: sep,
});
if (!config) {
  console.error("the host would not start this bundle (required configuration missing)");
  process.exit(1);
}
console.log(JSON.stringify(config));
