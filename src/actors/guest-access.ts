/**
 * What a start prepares for `ports:` and `cloud-init:` before QEMU is spawned: the host ports of
 * this run (a `0` becomes a free port; a taken one fails the start with PORT_IN_USE), the VM's
 * SSH key (created on first use), and the NoCloud seed image in the runtime directory. Also maps
 * QEMU's own refusal of a forward (a port taken in the gap after the check) to PORT_IN_USE.
 *
 * @example
 * ```ts
 * const access = await prepareGuestAccess(ports, { vmId, name, config, runtimeDir });
 * ports.buildArgv(config, { ...paths, ...access }, host); // -netdev user,…,hostfwd=… and the seed drive
 * ```
 */
import { nocloudSeedFiles, nocloudSeedImage } from "../config/nocloud-seed.ts";
import type { PortForward, VmConfig } from "../config/vm-config.ts";
import { isMaqetError, MaqetError } from "../errors/maqet-error.ts";
import type { VmPorts } from "./ports.ts";

export interface GuestAccess {
  /** `ports:` with this run's host ports. */
  forwards?: PortForward[];
  /** The seed image's path. */
  seedImage?: string;
}

/** True when the config needs the guest-access adapters (`ports:` or `cloud-init:`). */
export function needsGuestAccess(config: VmConfig): boolean {
  return config.ports !== undefined || config.cloudInit !== undefined;
}

export async function prepareGuestAccess(
  ports: VmPorts,
  input: { vmId: string; name: string; config: VmConfig; runtimeDir: string },
): Promise<GuestAccess> {
  const { vmId, name, config, runtimeDir } = input;
  if (!needsGuestAccess(config)) return {};
  const guest = ports.guest;
  if (guest === undefined) {
    throw new MaqetError(
      "INTERNAL",
      `VM '${name}' has ports: or cloud-init:, but this maqet was built without the guest-access adapters (VmPorts.guest).`,
    );
  }
  const access: GuestAccess = {};
  if (config.ports !== undefined) access.forwards = await guest.probe.bindForwards(config.ports);
  if (config.cloudInit !== undefined) {
    const key = await guest.keys.ensure(vmId, name);
    const files = nocloudSeedFiles(config.cloudInit, { vmId, name, publicKey: key.publicKey });
    access.seedImage = await guest.writeSeed(runtimeDir, nocloudSeedImage(files, new Date(ports.clock.now())));
  }
  // A new run: the guest's host key and the forwarded port may both be new.
  if (config.cloudInit !== undefined || config.ports?.some((f) => f.guestPort === 22)) {
    await guest.keys.resetKnownHosts(vmId);
  }
  return access;
}

/**
 * QEMU refusing a forward ("Could not set up host forwarding rule 'tcp:127.0.0.1:2222-:22'"):
 * the port was taken after maqet's check. Any other error is returned as it is.
 *
 * @example
 * ```ts
 * withForwardRefusal(error, "…Could not set up host forwarding rule 'tcp:127.0.0.1:2222-:22'", forwards).code; // "PORT_IN_USE"
 * ```
 */
export function withForwardRefusal(error: unknown, stderr: string | undefined, forwards?: PortForward[]): unknown {
  const rule = /could not set up host forwarding rule '(tcp|udp):([^:]*):(\d+)-/i.exec(stderr ?? "");
  if (rule === null || !isMaqetError(error, "START_FAILED")) return error;
  const [, protocol, hostIp, port] = rule;
  const index = forwards?.findIndex((f) => f.protocol === protocol && f.hostPort === Number(port));
  const forward = (index !== undefined && index >= 0 ? forwards?.[index] : undefined) ?? {
    hostIp: hostIp || "0.0.0.0",
    hostPort: Number(port),
    guestPort: 0,
    protocol: protocol as "tcp" | "udp",
  };
  const where = index !== undefined && index >= 0 ? ` (ports[${index}])` : "";
  return new MaqetError(
    "PORT_IN_USE",
    `Host port ${forward.hostIp}:${forward.hostPort}/${forward.protocol}${where} is already in use: QEMU could not set up the forward. Stop what listens on it, or choose another host port in ports: (0 picks a free one).`,
    {
      cause: error,
      details: {
        ...(isMaqetError(error) ? error.details : {}),
        hostPort: forward.hostPort,
        protocol: forward.protocol,
      },
    },
  );
}
