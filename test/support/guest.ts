/**
 * The tiny bootable test guest (test/fixtures/guest/): a Debian kernel plus a busybox initramfs
 * whose /init obeys `maqet.*` words on the kernel command line. Built once per machine by
 * `build-guest.mjs` and cached (see docs/testing.md); about 5–8 s from spawn to userspace under
 * TCG, so a handful of e2e tests use it, never a per-test boot.
 *
 * @example
 * ```ts
 * const guest = await ensureGuest();
 * await maqet.add(guestVmConfig(guest, { name: "g", markers: ["HELLO"], action: "poweroff" }));
 * await maqet.start("g");
 * // serial.log in the VM's runtime dir gets "MAQET-MARKER HELLO", then the guest powers off
 * ```
 */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { stringify } from "yaml";
import type { VmConfigInput } from "../../src/mod.ts";

/** What /init does after printing its markers (`maqet.action=`). */
export type GuestAction =
  /** Stay up; an ACPI power-button press (`system_powerdown`) powers off. The default. */
  | "idle"
  /** Stay up and ignore the power button, like a guest without ACPI support. */
  | "ignore-acpi"
  /** `poweroff -f` at once: QEMU reports SHUTDOWN guest:true reason guest-shutdown. */
  | "poweroff"
  /** `reboot -f` at once, and again on every boot (same command line): RESET guest:true. */
  | "reboot"
  /** Kernel panic (sysrq c); with `-device pvpanic` QEMU reports GUEST_PANICKED. */
  | "panic"
  /** An interactive busybox shell on the serial console (prompt `maqet-guest# `), for `console -i`. */
  | "shell"
  /**
   * `MAQET-COUNT <n> uptime=<s>` every 100 ms (slower when the vCPU is busy), n from 1, forever:
   * the count lives in guest memory, so after a live migration it goes on and never restarts.
   * The power button powers off, as with `idle`.
   */
  | "counter"
  /**
   * The counter, plus a loop rewriting `dirtyMiB` (default 64) MiB of RAM with non-zero bytes no
   * recent pass wrote (`MAQET-DIRTY pass=<n> mib=<MiB>` as each starts): pages a live migration
   * must send again. A 48 MiB pass takes 0.5-1 s under TCG here quiet; QEMU's `calc-dirty-rate`
   * sees the whole 48 MiB change in a window holding a pass.
   */
  | "dirty";

export interface GuestAppendOptions {
  /** Each one printed as `MAQET-MARKER <word>` on the serial console, in order. */
  markers?: string | string[];
  action?: GuestAction;
  /** Seconds /init waits after the markers before the action (whole or decimal). */
  delaySeconds?: number;
  /**
   * `maqet.net=on`: before the action, bring the network up (virtio-net, DHCP from QEMU's user
   * networking), install the NoCloud seed's (label `cidata`) ssh_authorized_keys for root, run
   * dropbear on port 22 and a TCP listener on port 80 that answers `MAQET-HELLO <kernel release>`.
   */
  net?: boolean;
  /** Action `dirty`: how many MiB it keeps rewriting (`maqet.dirty=`); default 64. */
  dirtyMiB?: number;
  /** More kernel command-line words, appended as given. */
  extra?: string[];
}

export interface GuestManifest {
  key: string;
  kernel: string;
  initrd: string;
  kernelPackage: string;
  kernelVersion: string;
  kernelRelease: string;
  busyboxVersion: string;
  builtAt: string;
  buildMs: number;
  /** False when this call built it. */
  cached: boolean;
}

export interface Guest {
  /** Absolute path of the kernel (bzImage). */
  kernel: string;
  /** Absolute path of the initramfs (cpio newc, gzip). */
  initrd: string;
  manifest: GuestManifest;
  /** The kernel command line: `console=ttyS0 quiet` plus the `maqet.*` orders. */
  append(options?: GuestAppendOptions): string;
}

/** Lines /init prints (each ends with `\r\n` on the serial log: the tty adds the `\r`). */
export const GUEST_LINES = {
  /** First line from userspace, with the guest's uptime then. */
  boot: /^MAQET-BOOT uptime=([0-9.]+) action=(\S+)\r?$/m,
  /** Printed once /init idles (actions idle and ignore-acpi). */
  ready: /^MAQET-READY\r?$/m,
  /** maqet.net=on: the seed as read (`keys=N`), then dropbear and the listener are up. */
  seed: /^MAQET-SEED (\S+) keys=(\d+) hostname=(\S+)\r?$/m,
  netReady: /^MAQET-NET-READY ssh=22 hello=80\r?$/m,
  /** Printed when the power button was pressed and /init powers off. */
  acpiPoweroff: /^MAQET-ACPI power-button: powering off\r?$/m,
  /** Printed by action `shell` just before the shell starts on the serial console. */
  shell: /^MAQET-SHELL\r?$/m,
  /** Actions `counter` and `dirty`, every 100 ms: the count (from 1) and the guest's uptime. */
  count: /^MAQET-COUNT (\d+) uptime=([0-9.]+)\r?$/m,
  /** Action `dirty`, as each pass over its memory starts. */
  dirty: /^MAQET-DIRTY pass=(\d+) mib=(\d+)\r?$/m,
} as const;

/**
 * Every `MAQET-COUNT` value on a serial log, in order (actions `counter` and `dirty`).
 *
 * @example
 * ```ts
 * guestCounts("MAQET-BOOT uptime=5.1 action=counter\r\nMAQET-COUNT 1 uptime=5.3\r\nMAQET-COUNT 2 uptime=5.4\r\n");
 * // [1, 2]
 * ```
 */
export function guestCounts(serialLog: string): number[] {
  return [...serialLog.matchAll(new RegExp(GUEST_LINES.count.source, "gm"))].map((m) => Number(m[1]));
}

/** The line a marker prints, as a regex over the serial log. */
export function markerLine(marker: string): RegExp {
  return new RegExp(`^MAQET-MARKER ${marker.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}\r?$`, "m");
}

const BUILD_SCRIPT = fileURLToPath(new URL("../fixtures/guest/build-guest.mjs", import.meta.url));
/** Words the guest reads: no spaces (the command line is split on them), nothing a shell expands. */
const WORD = /^[A-Za-z0-9_.:+-]+$/;

let pending: Promise<Guest> | undefined;

/**
 * Builds the guest when this machine's cache has none (about 5 s with a warm apt cache; needs
 * Debian's apt and the network once), then returns its paths. Memoised per process.
 */
export function ensureGuest(): Promise<Guest> {
  pending ??= buildOrReuse();
  pending.catch(() => {
    pending = undefined;
  });
  return pending;
}

function buildOrReuse(): Promise<Guest> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [BUILD_SCRIPT],
      { encoding: "utf8", timeout: 10 * 60_000, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        if (error) {
          const why = stderr.trim() || error.message;
          reject(new Error(`Cannot build the maqet test guest (node ${BUILD_SCRIPT}): ${why}`));
          return;
        }
        const manifest = JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as GuestManifest;
        resolve({
          kernel: manifest.kernel,
          initrd: manifest.initrd,
          manifest,
          append: guestAppend,
        });
      },
    );
  });
}

/**
 * The kernel command line for the given orders.
 *
 * @example
 * ```ts
 * guestAppend({ markers: "HELLO", action: "poweroff" });
 * // "console=ttyS0 quiet maqet.marker=HELLO maqet.action=poweroff"
 * ```
 */
export function guestAppend(options: GuestAppendOptions = {}): string {
  const words = ["console=ttyS0", "quiet"];
  const markers = typeof options.markers === "string" ? [options.markers] : (options.markers ?? []);
  for (const marker of markers) words.push(`maqet.marker=${checkWord(marker, "marker")}`);
  if (options.action !== undefined) words.push(`maqet.action=${options.action}`);
  if (options.net) words.push("maqet.net=on");
  if (options.dirtyMiB !== undefined) {
    if (!Number.isInteger(options.dirtyMiB) || options.dirtyMiB < 1) {
      throw new Error(`dirtyMiB must be a whole number >= 1, got ${options.dirtyMiB}`);
    }
    words.push(`maqet.dirty=${options.dirtyMiB}`);
  }
  if (options.delaySeconds !== undefined) {
    if (!(options.delaySeconds >= 0)) throw new Error(`delaySeconds must be >= 0, got ${options.delaySeconds}`);
    words.push(`maqet.delay=${options.delaySeconds}`);
  }
  for (const word of options.extra ?? []) words.push(checkWord(word, "extra word"));
  return words.join(" ");
}

function checkWord(word: string, what: string): string {
  if (!WORD.test(word)) throw new Error(`Guest ${what} ${JSON.stringify(word)} must match ${WORD}.`);
  return word;
}

export interface GuestVmOptions extends GuestAppendOptions {
  name?: string;
  /** Default 256M. */
  memory?: string;
  /** Extra QEMU argv words (e.g. `["-device", "pvpanic"]` for GUEST_PANICKED). */
  args?: string[];
}

/**
 * A VM config (for `maqet.add`) that boots the guest: q35 (ACPI power button), TCG (KVM on this
 * host is a nested PVM that cannot boot a Linux kernel), `-nodefaults` (no NIC, VGA or CD-ROM to
 * probe), no disks. The serial console goes to `<runtimeDir>/serial.log` (maqet adds it).
 *
 * @example
 * ```ts
 * await maqet.add(guestVmConfig(await ensureGuest(), { name: "g", action: "ignore-acpi" }));
 * ```
 */
export function guestVmConfig(guest: Guest, options: GuestVmOptions = {}): VmConfigInput {
  return {
    ...(options.name !== undefined ? { name: options.name } : {}),
    binary: "qemu-system-x86_64",
    accel: "tcg",
    machine: "q35",
    memory: options.memory ?? "256M",
    kernel: guest.kernel,
    initrd: guest.initrd,
    append: guest.append(options),
    arguments: ["nodefaults"],
    ...(options.args ? { args: options.args } : {}),
  };
}

/**
 * The same VM as {@link guestVmConfig}, as the YAML a user would write for `maqet add FILE`
 * (the CLI e2e tests), with `extra` top-level keys (e.g. `ports`, `cloud-init`) after it.
 *
 * @example
 * ```ts
 * await writeFile("g.yaml", guestVmYaml(await ensureGuest(), { name: "g", action: "shell" }));
 * ```
 */
export function guestVmYaml(guest: Guest, options: GuestVmOptions = {}, extra: Record<string, unknown> = {}): string {
  return stringify({ ...guestVmConfig(guest, options), ...extra });
}
