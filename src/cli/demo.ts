/**
 * `maqet demo`: the whole loop on the example VM, as a new user would type it — add, start,
 * two QMP commands, stop — then the VM's history from the store.
 *
 * @example
 * ```sh
 * maqet demo
 * ```
 */
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import type { Maqet } from "../api/maqet.ts";
import { isMaqetError } from "../errors/maqet-error.ts";
import { renderResult } from "./render.ts";

export const DEMO_VM = "demo";

/** examples/demo.yaml in the package (two levels above src/cli, three above dist/src/cli). */
export function demoConfigPath(): string {
  const url = import.meta.url.includes("/dist/")
    ? new URL("../../../examples/demo.yaml", import.meta.url)
    : new URL("../../examples/demo.yaml", import.meta.url);
  return fileURLToPath(url);
}

/**
 * The example config with its disk moved into the data directory, so the demo never writes
 * into the package (examples/ may be read-only, e.g. under node_modules).
 */
export async function demoConfig(dataDir: string): Promise<Record<string, unknown>> {
  const config = parse(await readFile(demoConfigPath(), "utf8")) as Record<string, unknown>;
  const storage = (config.storage as Array<Record<string, unknown>> | undefined) ?? [];
  config.storage = storage.map((disk) => ({ ...disk, file: join(dataDir, "demo", String(disk.file)) }));
  return config;
}

export async function runDemo(
  maqet: Maqet,
  options: { json: boolean; dataDir: string; print: (text: string) => void },
): Promise<void> {
  const say = (text: string) => {
    if (!options.json) options.print(text);
  };
  // A previous demo VM is removed (its history stays in the store) so each run starts clean.
  try {
    await maqet.remove(DEMO_VM, { force: true, timeoutMs: 5000 });
    say(`$ maqet rm --force ${DEMO_VM}   # previous demo VM`);
  } catch (error) {
    if (!isMaqetError(error, "VM_NOT_FOUND")) throw error;
  }
  say(`$ maqet add ${demoConfigPath()}   # disk under ${join(options.dataDir, "demo")}`);
  say(renderResult("add", await maqet.add(await demoConfig(options.dataDir), { name: DEMO_VM })));
  say(`$ maqet start ${DEMO_VM}`);
  say(renderResult("start", await maqet.start(DEMO_VM)));
  say(`$ maqet qmp ${DEMO_VM} query-status`);
  say(JSON.stringify(await maqet.qmp(DEMO_VM, "query-status")));
  say(`$ maqet qmp ${DEMO_VM} query-version`);
  say(JSON.stringify(await maqet.qmp(DEMO_VM, "query-version")));
  say(`$ maqet stop ${DEMO_VM} --timeout 3   # firmware-only guest: no OS answers ACPI, so maqet escalates`);
  say(renderResult("stop", await maqet.stop(DEMO_VM, { timeoutMs: 3000 })));
  say(`$ maqet history ${DEMO_VM}`);
  const history = await maqet.history(DEMO_VM);
  if (options.json) options.print(JSON.stringify(history, null, 2));
  else say(renderResult("history", history));
}
