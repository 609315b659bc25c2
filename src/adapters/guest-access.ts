/**
 * The real {@link GuestAccessPorts}: port probes (src/adapters/port-probe.ts), the VM's SSH keys
 * under `<dataDir>/vms` (src/adapters/ssh-keys.ts), and the seed image written as
 * `<runtimeDir>/cidata.iso` (0600; rebuilt at each start, gone with the runtime directory).
 *
 * @example
 * ```ts
 * const guest = createGuestAccess({ dataDir: "/home/ada/.local/share/maqet" });
 * await guest.keys.ensure(vmId, "web");
 * ```
 */
import { chmod, writeFile } from "node:fs/promises";
import type { GuestAccessPorts } from "../actors/ports.ts";
import { runtimePaths } from "../actors/runtime-paths.ts";
import { createPortProbe } from "./port-probe.ts";
import { createSshKeys } from "./ssh-keys.ts";

export function createGuestAccess(options: { dataDir: string }): GuestAccessPorts {
  return {
    keys: createSshKeys({ root: `${options.dataDir}/vms` }),
    probe: createPortProbe(),
    writeSeed: async (runtimeDir, image) => {
      const path = runtimePaths(runtimeDir).seedImage;
      await writeFile(path, image, { mode: 0o600 });
      await chmod(path, 0o600);
      return path;
    },
  };
}
