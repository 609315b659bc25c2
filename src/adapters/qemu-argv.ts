/**
 * The qemu-system argument list for one run of a VM (everything after the binary). Pure: the
 * caller supplies the runtime paths and whether KVM is usable.
 *
 * Order: identity, control plumbing, accelerator and machine, sizing, display, boot, disks,
 * serial, then the user's `arguments` (rendered) and `args` (verbatim) last, so they can add to
 * or override anything above (for repeated options QEMU keeps the last).
 *
 * - `-name guest=<name>` and `-uuid <vmId>`: the **pid-verification marker is the vmId**, which
 *   appears verbatim in `/proc/<pid>/cmdline` as the word after `-uuid` (libvirt does the same;
 *   the guest sees it as its SMBIOS system UUID). vmId must therefore be a UUID.
 * - `-S` (start paused, `cont` after the QMP handshake), `-no-shutdown` (a guest power-off leaves
 *   the process alive), `-pidfile`, `-qmp unix:<socket>,server=on,wait=off`.
 * - No `-nodefaults`: as in MAQET, QEMU's own defaults stay (NIC with user networking, VGA,
 *   CD-ROM), so MAQET configs behave the same. Add `nodefaults` to `arguments` to drop them.
 * - `-display none` unless `display` is set or the user's arguments/args choose a display
 *   (`-display`, `-nographic`): a VM started by a service must not try to open a window.
 * - `-accel kvm|tcg` (`auto` → kvm when the host can use it), unless the user's words already
 *   choose one (`enable-kvm`, `-accel`, `-machine accel=`, `machine: …,accel=`; see
 *   src/config/accelerator-choice.ts); no default `-machine`, `-m`, `-smp`.
 * - Disks: `-drive file=<abs>,if=<if>,format=<fmt>,id=<name>` with commas in paths doubled.
 *   `id` only, no `node-name`: QEMU refuses a node-name equal to a drive id, and QMP block
 *   commands (snapshots, query-block) address the drive by its id. `if=sata` and `if=scsi` do not
 *   exist in `-drive`, so those disks get `if=none` plus one AHCI (`maqet-ahci`) or virtio-scsi
 *   (`maqet-scsi`) controller and an `ide-hd` / `scsi-hd` device.
 * - VirtFS shares: `-virtfs local,path=<abs>,mount_tag=<tag>,security_model=<m>,id=<id>[,readonly=on]`
 *   plus MAQET's extra `options:` as key=value; `/` is refused here too (the config parser and the
 *   start preflight refuse it first, the latter on the real path).
 * - A CD-ROM (`media: cdrom`): the same `-drive` plus `media=cdrom,readonly=on` (`ide-cd` / `scsi-cd`
 *   behind a sata / scsi controller).
 * - The first serial port, unless the user's arguments/args set `-serial`: with a `serialSocket`,
 *   `-chardev socket,id=maqet-serial0,path=<serialSocket>,server=on,wait=off,logfile=<serialLog>,logappend=off`
 *   and `-serial chardev:maqet-serial0`: `maqet console -i` connects to the socket while QEMU
 *   keeps writing everything the guest prints to the log (connected or not; QEMU 7.2 logs output
 *   it could not send, and accepts one socket client at a time, queueing the next until the first
 *   leaves). Without a socket, `-serial file:<serialLog>` (the form before `console -i`).
 * - `ports:`: `-netdev user,id=maqet-net0,hostfwd=tcp:127.0.0.1:2222-:22,…` and
 *   `-device virtio-net-pci,netdev=maqet-net0`, with the host ports of this run
 *   (`runtime.forwards`: `0` resolved to a free port at start; without it, the config's).
 * - `cloud-init:`: the NoCloud seed (`runtime.seedImage`, `<runtime dir>/cidata.iso`) as a read-only virtio disk
 *   `-drive file=<seed>,if=virtio,format=raw,readonly=on,id=maqet-seed`.
 *
 * @example
 * ```ts
 * const argv = buildQemuArgv(config, { vmId, name: "web", qmpSocket, pidFile }, { kvmUsable: true });
 * await execa(binary, argv);
 * ```
 */
import type { QemuRuntimePaths } from "../actors/ports.ts";
import { SERIAL_CHARDEV_ID } from "../actors/runtime-paths.ts";
import { checkAcceleratorChoice } from "../config/accelerator-choice.ts";
import { FORWARD_NETDEV_ID } from "../config/parse-ports.ts";
import { renderArguments } from "../config/render-arguments.ts";
import type { DiskDevice, PortForward, VirtfsShare, VmConfig } from "../config/vm-config.ts";
import { MaqetError } from "../errors/maqet-error.ts";

const UUID_PATTERN = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Controller ids added for sata/scsi disks (storage names may not start with `maqet-`). */
export const AHCI_CONTROLLER_ID = "maqet-ahci";
export const SCSI_CONTROLLER_ID = "maqet-scsi";
/** The drive id of the NoCloud seed (`cloud-init:`). */
export const SEED_DRIVE_ID = "maqet-seed";
export { SERIAL_CHARDEV_ID } from "../actors/runtime-paths.ts";

/**
 * Builds the argv; throws `INVALID_ARGUMENT` when `runtime.vmId` is not a UUID (the marker).
 *
 * @example
 * ```ts
 * buildQemuArgv(
 *   { accel: "auto", memory: "64M", args: [], arguments: [], storage: [] },
 *   { vmId: "0b5c3f8e-4a1d-4c7e-9f00-3c2d1e0f9a8b", name: "demo", qmpSocket: "/run/m/qmp.sock", pidFile: "/run/m/qemu.pid" },
 *   { kvmUsable: false },
 * ); // ["-name", "guest=demo", "-uuid", "0b5c...", "-S", "-no-shutdown", ..., "-accel", "tcg", "-m", "64M", "-display", "none"]
 * ```
 */
export function buildQemuArgv(config: VmConfig, runtime: QemuRuntimePaths, host: { kvmUsable: boolean }): string[] {
  if (!UUID_PATTERN.test(runtime.vmId)) {
    throw new MaqetError(
      "INVALID_ARGUMENT",
      `VM id ${JSON.stringify(runtime.vmId)} is not a UUID; it becomes QEMU's -uuid and the marker that ties a pid to the VM. Create ids with crypto.randomUUID().`,
      { details: { vmId: runtime.vmId } },
    );
  }
  const user = [...renderArguments(config.arguments), ...config.args];
  const argv = [
    "-name",
    `guest=${escapeOption(runtime.name)}`,
    "-uuid",
    runtime.vmId,
    "-S",
    "-no-shutdown",
    "-pidfile",
    runtime.pidFile,
    "-qmp",
    `unix:${escapeOption(runtime.qmpSocket)},server=on,wait=off`,
  ];
  // The user's own choice stands (a second one would make QEMU refuse both); a contradicting
  // `accel:` is an error, not a guess.
  if (checkAcceleratorChoice(config, "the VM's config") === undefined) {
    argv.push("-accel", accelFor(config.accel, host.kvmUsable));
  }
  if (config.machine !== undefined) argv.push("-machine", config.machine);
  if (config.memory !== undefined) argv.push("-m", config.memory);
  if (config.cpu !== undefined) argv.push("-smp", String(config.cpu));
  if (config.display !== undefined) argv.push("-display", config.display);
  else if (!setsOption(user, "-display", "-nographic")) argv.push("-display", "none");
  if (config.vga !== undefined) argv.push("-vga", config.vga);
  if (config.kernel !== undefined) argv.push("-kernel", config.kernel);
  if (config.initrd !== undefined) argv.push("-initrd", config.initrd);
  if (config.append !== undefined) argv.push("-append", config.append);
  argv.push(...driveArgs(config.storage));
  argv.push(...virtfsArgs(config.shares ?? []));
  if (config.cloudInit !== undefined && runtime.seedImage !== undefined) {
    argv.push("-drive", `file=${escapeOption(runtime.seedImage)},if=virtio,format=raw,readonly=on,id=${SEED_DRIVE_ID}`);
  }
  if (config.ports !== undefined) argv.push(...forwardArgs(runtime.forwards ?? config.ports));
  if (runtime.serialLog !== undefined && !setsOption(user, "-serial")) {
    if (runtime.serialSocket !== undefined) {
      const chardev = [
        `socket,id=${SERIAL_CHARDEV_ID}`,
        `path=${escapeOption(runtime.serialSocket)}`,
        "server=on",
        "wait=off",
        `logfile=${escapeOption(runtime.serialLog)}`,
        "logappend=off",
      ];
      argv.push("-chardev", chardev.join(","), "-serial", `chardev:${SERIAL_CHARDEV_ID}`);
    } else {
      // The legacy "file:" chardev syntax takes the rest of the word as the path: no comma escaping.
      argv.push("-serial", `file:${runtime.serialLog}`);
    }
  }
  argv.push(...user);
  return argv;
}

/**
 * The accelerator QEMU gets: `auto` means KVM when the host can use it, TCG otherwise.
 *
 * @example
 * ```ts
 * accelFor("auto", false); // "tcg"
 * ```
 */
export function accelFor(accel: VmConfig["accel"], kvmUsable: boolean): "kvm" | "tcg" {
  if (accel === "auto") return kvmUsable ? "kvm" : "tcg";
  return accel;
}

/**
 * Doubles commas, as QEMU's option parser requires inside a value (`a,b` → `a,,b`).
 *
 * @example
 * ```ts
 * escapeOption("/vms/a,b.qcow2"); // "/vms/a,,b.qcow2"
 * ```
 */
export function escapeOption(value: string): string {
  return value.replaceAll(",", ",,");
}

/**
 * The user-mode NIC of `ports:` with one `hostfwd` per forward.
 *
 * @example
 * ```ts
 * forwardArgs([{ hostIp: "127.0.0.1", hostPort: 2222, guestPort: 22, protocol: "tcp" }]);
 * // ["-netdev", "user,id=maqet-net0,hostfwd=tcp:127.0.0.1:2222-:22", "-device", "virtio-net-pci,netdev=maqet-net0"]
 * ```
 */
export function forwardArgs(forwards: readonly PortForward[]): string[] {
  const netdev = [
    "user",
    `id=${FORWARD_NETDEV_ID}`,
    ...forwards.map((f) => `hostfwd=${f.protocol}:${f.hostIp}:${f.hostPort}-:${f.guestPort}`),
  ];
  return ["-netdev", netdev.join(","), "-device", `virtio-net-pci,netdev=${FORWARD_NETDEV_ID}`];
}

function driveArgs(disks: readonly DiskDevice[]): string[] {
  const argv: string[] = [];
  const sata = disks.filter((d) => d.interface === "sata");
  const scsi = disks.filter((d) => d.interface === "scsi");
  if (sata.length > 0) argv.push("-device", `ahci,id=${AHCI_CONTROLLER_ID}`);
  if (scsi.length > 0) argv.push("-device", `virtio-scsi-pci,id=${SCSI_CONTROLLER_ID}`);
  for (const disk of disks) {
    const viaDevice = disk.interface === "sata" || disk.interface === "scsi";
    const cdrom = disk.media === "cdrom";
    const drive = [
      `file=${escapeOption(disk.file)}`,
      `if=${viaDevice ? "none" : disk.interface}`,
      `format=${disk.type}`,
      `id=${disk.name}`,
    ];
    if (cdrom) drive.push("media=cdrom", "readonly=on");
    argv.push("-drive", drive.join(","));
    const kind = cdrom ? "cd" : "hd";
    if (disk.interface === "sata")
      argv.push("-device", `ide-${kind},drive=${disk.name},bus=${AHCI_CONTROLLER_ID}.${sata.indexOf(disk)}`);
    if (disk.interface === "scsi") argv.push("-device", `scsi-${kind},drive=${disk.name},bus=${SCSI_CONTROLLER_ID}.0`);
  }
  return argv;
}

/**
 * `-virtfs` words for the shares; throws PATH_REFUSED for `/` (a last line of defence).
 *
 * @example
 * ```ts
 * virtfsArgs([{ name: "data", path: "/srv/share", mountTag: "data", id: "data", securityModel: "mapped-xattr", readonly: true }]);
 * // ["-virtfs", "local,path=/srv/share,mount_tag=data,security_model=mapped-xattr,id=data,readonly=on"]
 * ```
 */
export function virtfsArgs(shares: readonly VirtfsShare[]): string[] {
  const argv: string[] = [];
  for (const share of shares) {
    if (share.path.replace(/\/+$/, "") === "") {
      throw new MaqetError(
        "PATH_REFUSED",
        `Refusing VirtFS share '${share.name}' of /: sharing the root directory exposes the whole host. Share a dedicated directory instead.`,
        { details: { path: share.path, rule: "/" } },
      );
    }
    const parts = [
      "local",
      `path=${escapeOption(share.path)}`,
      `mount_tag=${escapeOption(share.mountTag)}`,
      `security_model=${share.securityModel}`,
      `id=${share.id}`,
    ];
    if (share.readonly) parts.push("readonly=on");
    for (const [key, value] of Object.entries(share.extra ?? {})) parts.push(`${key}=${escapeOption(value)}`);
    argv.push("-virtfs", parts.join(","));
  }
  return argv;
}

/** True when the user's words contain one of the options (QEMU also accepts a `--` prefix). */
function setsOption(words: readonly string[], ...options: string[]): boolean {
  return words.some((word) => options.includes(word) || options.includes(word.slice(1)));
}
