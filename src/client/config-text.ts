/**
 * Reads a VM config file on the client's side for `add` through an agent (which may not see the
 * file): the same checks and messages as in-process (10 MB, UTF-8, a regular file), and its
 * absolute path, which the agent uses for the relative paths inside it.
 *
 * @example
 * ```ts
 * const { text, path } = await loadConfigText("vm.yaml"); // path: /home/ada/vms/vm.yaml
 * ```
 */
import { resolve } from "node:path";
import { readConfigText } from "../adapters/load-vm-config.ts";

export async function loadConfigText(file: string): Promise<{ text: string; path: string }> {
  const path = resolve(file);
  return { text: await readConfigText(path, file), path };
}
