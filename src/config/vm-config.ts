/**
 * The validated, normalised VM configuration: what `vm.defined` records and what the QEMU
 * argv builder reads. Parsed from MAQET-compatible YAML by {@link parseVmConfig}.
 *
 * @example
 * ```ts
 * const config: VmConfig = { accel: "tcg", memory: "256M", cpu: 1, args: [], arguments: [], storage: [] };
 * ```
 */
import type { QmpRules } from "./qmp-rules.ts";

export type Accel = "auto" | "kvm" | "tcg";
export type DiskFormat = "qcow2" | "raw";
export type DiskInterface = "virtio" | "sata" | "ide" | "scsi" | "none";

/** One item of MAQET's structured `arguments` list, kept as written (see docs/config.md). */
export type ArgumentItem = string | Record<string, unknown>;

export interface DiskDevice {
  name: string;
  type: DiskFormat;
  /** Absolute path (relative paths in YAML resolve against the config file's directory). */
  file: string;
  /** qemu-img size: digits with an optional K/M/G/T suffix. Needed to create the file. */
  size?: string;
  interface: DiskInterface;
  /** Absolute path of the backing image (a new overlay is created on top of it). */
  backingFile?: string;
  backingFormat?: DiskFormat;
  /** `qemu-img create -o` options (e.g. cluster_size, preallocation), used when the file is created. */
  options?: Record<string, string | number | boolean>;
  /**
   * `cdrom` (MAQET's `media: cdrom`): a read-only CD-ROM drive for an ISO; never created, no size.
   * Interface `ide` (default), `sata` (an `ide-cd` on the AHCI controller) or `scsi` (`scsi-cd`).
   */
  media?: "cdrom";
}

export type VirtfsSecurityModel = "passthrough" | "mapped-xattr" | "mapped-file" | "mapped" | "none";

/** A host directory shared with the guest over 9p (`type: virtfs` in `storage`). */
export interface VirtfsShare {
  name: string;
  /** Absolute host directory. */
  path: string;
  /** The tag the guest mounts (`mount -t 9p -o trans=virtio <tag> /mnt`). Default: the name. */
  mountTag: string;
  /** The fsdev id. Default: the name. */
  id: string;
  securityModel: VirtfsSecurityModel;
  readonly: boolean;
  /** Further `-virtfs` options, appended as key=value (MAQET's `options:` extras). */
  extra?: Record<string, string>;
}

/**
 * One host→guest port forward (`ports:` in YAML, docker/Lima spelling), rendered to QEMU user
 * networking's `hostfwd=`. See src/config/parse-ports.ts.
 */
export interface PortForward {
  /** The host address QEMU listens on. Default 127.0.0.1 (docker's default is 0.0.0.0). */
  hostIp: string;
  /** The host port; 0 = a free port chosen at each start (recorded in `vm.started`). */
  hostPort: number;
  guestPort: number;
  protocol: "tcp" | "udp";
}

/**
 * `cloud-init:`: a NoCloud seed (an ISO 9660 image labelled `cidata`) is built at each start and
 * attached read-only; maqet adds the VM's SSH public key to the user-data. See
 * src/config/parse-cloud-init.ts and docs/config.md.
 */
export interface CloudInitConfig {
  /** The cloud-config user-data as written (a mapping); maqet adds `ssh_authorized_keys`. */
  userData: Record<string, unknown>;
  /** The login `maqet ssh` uses: from user-data (`user:`, the first of `users:`), else `root`. */
  sshUser: string;
}

export interface VmConfig {
  /** VM name (from YAML `name`, or `add --name`). Not part of the stored config when absent. */
  name?: string;
  /** qemu-system binary: a name looked up on PATH, or a path. Default `qemu-system-x86_64`. */
  binary?: string;
  /** Memory size as QEMU's `-m` takes it, e.g. `256M`, `4G`. */
  memory?: string;
  cpu?: number;
  display?: string;
  vga?: string;
  accel: Accel;
  machine?: string;
  kernel?: string;
  initrd?: string;
  append?: string;
  /** Extra argv words appended verbatim. */
  args: string[];
  /**
   * MAQET's `log_file`: where QEMU's own output (stdout and stderr) is appended, instead of
   * `<runtime dir>/qemu.log`. Absolute (relative in YAML resolves against the config's directory).
   */
  logFile?: string;
  /** MAQET's structured argument forms, rendered by the argv builder. */
  arguments: ArgumentItem[];
  storage: DiskDevice[];
  /** VirtFS (9p) shares, from `storage` entries with `type: virtfs`. */
  shares?: VirtfsShare[];
  /** Host→guest port forwards over a user-mode NIC maqet adds (`ports:`). */
  ports?: PortForward[];
  /** The NoCloud seed's user-data (`cloud-init:`). */
  cloudInit?: CloudInitConfig;
  /** Which QMP commands may run on this VM (`qmp: {allow, deny}`, see docs/security.md). */
  qmp?: QmpRules;
  /**
   * A cluster's HA policy (docs/cluster.md): `restart` brings the VM up on another host once its
   * host is confirmed fenced (its disks must be on storage every host reaches). Default none.
   */
  ha?: "restart" | "none";
  /**
   * Set only when read from a config stored before maqet kept key order (a schema 1 `vm.defined`,
   * see src/config/stored-config.ts): the `arguments` mappings whose key order reaches the argv
   * and may have been lost (`arguments[1]`, `arguments[2].object`). A start warns; re-record the
   * config (`maqet apply VM FILE`, or `rm` and `add`) to clear it.
   */
  argumentOrderLost?: string[];
}

/** Strict VM and snapshot name rule: no leading `-`, no `/`, no `..`. */
export const VM_NAME_PATTERN = /^[A-Za-z0-9_][A-Za-z0-9._-]{0,62}$/;

export function isValidVmName(name: string): boolean {
  return VM_NAME_PATTERN.test(name) && !name.includes("..");
}
