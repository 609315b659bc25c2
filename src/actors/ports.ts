/**
 * The small interfaces the core needs from the outside world. `src/adapters` implements them
 * against real QEMU, sockets and processes; unit tests pass fakes. Nothing here imports an effect.
 *
 * @example
 * ```ts
 * const ports: VmPorts = { qmp: createQmpConnector(), processes: createProcessControl(), ... };
 * ```
 */

import type { Observable } from "rxjs";
import type { DiskDevice, PortForward, VirtfsShare, VmConfig } from "../config/vm-config.ts";
import type { CrashHook } from "../util/crash-points.ts";

// ---------------------------------------------------------------- QMP

export interface QmpVersion {
  qemu: { major: number; minor: number; micro: number };
  package: string;
}

export interface QmpGreeting {
  version: QmpVersion;
  capabilities: string[];
}

/** An asynchronous QMP event, exactly as QEMU sent it. */
export interface QmpEvent {
  event: string;
  data?: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

export interface QmpExecuteOptions {
  /** Reject with `QMP_TIMEOUT` after this long (default: the session's default, 30 s). */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface QmpCloseInfo {
  /** Set when the connection ended for a reason other than our own `close()`. */
  error?: Error;
}

/**
 * A negotiated QMP connection (greeting read, `qmp_capabilities` done).
 * A failed command rejects with a MaqetError of code `QMP_ERROR` whose `details` carry the
 * QMP error `class` and `desc`; a disconnect rejects every pending call with `QMP_DISCONNECTED`.
 */
export interface QmpSession {
  readonly greeting: QmpGreeting;
  execute<T = unknown>(command: string, args?: Record<string, unknown>, options?: QmpExecuteOptions): Promise<T>;
  /** Asynchronous events; completes when the connection closes. */
  readonly events$: Observable<QmpEvent>;
  /** Resolves once the connection has ended, for whatever reason. */
  readonly closed: Promise<QmpCloseInfo>;
  readonly isClosed: boolean;
  close(): Promise<void>;
}

export interface QmpConnectOptions {
  /** Keep retrying until the socket accepts, up to this long. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface QmpConnector {
  connect(socketPath: string, options?: QmpConnectOptions): Promise<QmpSession>;
}

// ---------------------------------------------------------------- processes

export interface ProcessExit {
  code: number | null;
  signal: string | null;
}

export interface LaunchSpec {
  /** Absolute path of the qemu-system binary. */
  binary: string;
  /** Arguments after the binary. */
  args: string[];
  /** Per-VM runtime directory (already created 0700). */
  runtimeDir: string;
  /** File receiving QEMU's stdout and stderr. */
  logFile: string;
}

export interface LaunchedProcess {
  pid: number;
  /** Resolves when this child exits (only observable by the process that launched it). */
  exit: Promise<ProcessExit>;
}

/** What a pid is, as far as this VM is concerned. */
export type ProcessState =
  /** Alive (not a zombie) and its command line carries the VM's marker. */
  | "alive"
  /** No such process, or a zombie. */
  | "gone"
  /** Alive, but some other program (pid reused). */
  | "foreign";

export interface ProcessControl {
  /** Spawns QEMU detached in its own session; rejects with `START_FAILED` when spawn fails. */
  launch(spec: LaunchSpec, signal?: AbortSignal): Promise<LaunchedProcess>;
  /** Reads /proc: zombie counts as gone; the command line must contain `marker`. */
  probe(pid: number, marker: string): ProcessState;
  kill(pid: number, signal: "SIGTERM" | "SIGKILL"): void;
  /**
   * How our own child ended while it is a zombie (not yet reaped by this process's event loop);
   * undefined otherwise. A stop reads it at once instead of waiting for the exit event.
   */
  zombieExit(pid: number): ProcessExit | undefined;
  /** Every live process whose command line carries `marker` (a /proc scan): finds an orphan with no pidfile yet. */
  findProcesses(marker: string): number[];
  /**
   * Polls until `probe` is no longer `alive`, or the timeout passes; true when gone. `exited`
   * (a {@link LaunchedProcess}'s exit, for our own child) makes it look again as soon as it settles.
   */
  waitGone(
    pid: number,
    marker: string,
    timeoutMs: number,
    signal?: AbortSignal,
    exited?: Promise<unknown>,
  ): Promise<boolean>;
  /** The VM's runtime directory under the configured root (a path; nothing is created). */
  runtimeDirOf(vmId: string): string;
  /** Creates (0700) and returns the VM's runtime directory under the configured root. */
  prepareRuntimeDir(vmId: string): Promise<string>;
  /** Reads a pidfile; undefined when absent or unreadable. */
  readPidFile(path: string): Promise<number | undefined>;
  /** Tightens the QMP socket to 0600 once QEMU has created it. */
  secureSocket(path: string): Promise<void>;
  /** The last `bytes` of a log file (QEMU's stderr), or undefined when unreadable. */
  readLogTail(path: string, bytes: number): Promise<string | undefined>;
}

// ---------------------------------------------------------------- binaries and disks

export interface BinaryLocator {
  /** Absolute path of a program, looked up once per process and cached. Throws `BINARY_NOT_FOUND`. */
  locate(program: string): Promise<string>;
}

export interface DiskProvisionResult {
  created: boolean;
  durationMs: number;
}

export interface DiskProvisioner {
  /** Creates the disk file with `qemu-img create` when it does not exist yet. */
  ensure(disk: DiskDevice, signal?: AbortSignal): Promise<DiskProvisionResult>;
  /** The disks whose files do not exist yet (they will need `qemu-img create`). */
  missing(disks: readonly DiskDevice[]): Promise<DiskDevice[]>;
  /** Refuses a VirtFS share of `/` or a system directory (real path), or one that is not a directory. */
  checkShare?(share: VirtfsShare): Promise<void>;
  /**
   * Removes an image this start created, when the start failed: the host is left as it was.
   * Only ever given files {@link ensure} reported `created`; a missing file is not an error.
   */
  discard?(file: string): Promise<void>;
}

// ---------------------------------------------------------------- host

export interface HostInfo {
  /** True when /dev/kvm can be opened read-write (so `accel: auto` picks KVM). */
  kvmUsable(): Promise<boolean>;
}

/** Paths of one VM run inside its runtime directory, given to the argv builder. */
export interface QemuRuntimePaths {
  vmId: string;
  name: string;
  qmpSocket: string;
  pidFile: string;
  serialLog?: string;
  /** `ports:` with this run's host ports (a `0` resolved to the free port chosen at start). */
  forwards?: PortForward[];
  /** The NoCloud seed image built for this run (`cloud-init:`). */
  seedImage?: string;
  /**
   * The serial console's socket (`maqet console -i`). With `serialLog`, the first serial port
   * becomes a socket chardev that also logs to `serialLog`; without it, `-serial file:` as before.
   */
  serialSocket?: string;
}

/** Builds the qemu-system argument list (everything after the binary); a pure function. */
export type QemuArgvBuilder = (config: VmConfig, runtime: QemuRuntimePaths, host: { kvmUsable: boolean }) => string[];

// ---------------------------------------------------------------- files

/** Reading files the guest or QEMU write (wait conditions, the serial log). */
export interface FileReader {
  exists(path: string): Promise<boolean>;
  /** The file's text, or undefined when it cannot be read. */
  readText(path: string): Promise<string | undefined>;
}

// ---------------------------------------------------------------- into the guest

/** A VM's SSH key files (src/adapters/ssh-keys.ts). Paths only: the private key is never read here. */
export interface SshKeyFiles {
  dir: string;
  /** The private key (0600), what `ssh -i` gets. */
  identityFile: string;
  publicKeyFile: string;
  /** The guest's host key as `ssh` learnt it (0600). */
  knownHostsFile: string;
  /** `ssh-ed25519 AAAA… maqet:<name>` */
  publicKey: string;
}

export interface SshKeyStore {
  /** Where the VM's key files are (created or not). */
  paths(vmId: string): Omit<SshKeyFiles, "publicKey">;
  /** The VM's key pair, created on first use (0700 directory, 0600 files). */
  ensure(vmId: string, name: string): Promise<SshKeyFiles>;
  /** Empties known_hosts (a new run may have a new host key and port). */
  resetKnownHosts(vmId: string): Promise<void>;
  /** Deletes the VM's key directory (`maqet rm`); nothing when there is none. */
  forget(vmId: string): Promise<void>;
}

export interface PortProbe {
  /** Checks fixed host ports are free and picks free ones for `0`; throws PORT_IN_USE. */
  bindForwards(forwards: readonly PortForward[]): Promise<PortForward[]>;
  /** True when host:port answers with an SSH identification line (`SSH-2.0-…`) within timeoutMs. */
  sshAnswers(host: string, port: number, timeoutMs: number): Promise<boolean>;
}

/** What `ports:` and `cloud-init:` need from the host. */
export interface GuestAccessPorts {
  keys: SshKeyStore;
  probe: PortProbe;
  /** Writes the NoCloud seed image into the run's runtime directory (0600); returns its path. */
  writeSeed(runtimeDir: string, image: Uint8Array): Promise<string>;
}

// ---------------------------------------------------------------- leases

/** Who holds a VM: one process on one host. `processStart` tells a live holder from a reused pid. */
export interface LeaseHolder {
  host: string;
  pid: number;
  processStart: string;
  command: string;
  acquiredAt: Date;
  renewedAt: Date;
}

export interface LeaseAcquired {
  /** The holder whose lease was taken over because it was dead (killed, crashed, gone). */
  takenOverFrom?: LeaseHolder;
}

/**
 * One driver per VM across processes. `acquire` takes the VM's lease for this process (again,
 * if it already holds it) or throws VM_BUSY naming the live holder; a dead holder's lease is
 * taken over. Reads never take a lease.
 */
export interface VmLeases {
  acquire(vmId: string, streamVersion: number): Promise<LeaseAcquired>;
  /** Keeps held leases fresh (holders on other hosts are judged by it). */
  renew(vmId: string): Promise<void>;
  release(vmId: string): Promise<void>;
}

// ---------------------------------------------------------------- time

export interface Clock {
  now(): number;
  sleep(ms: number, signal?: AbortSignal): Promise<void>;
}

// ---------------------------------------------------------------- all of them

/** Everything a VM actor needs from the outside world. */
export interface VmPorts {
  qmp: QmpConnector;
  processes: ProcessControl;
  locator: BinaryLocator;
  disks: DiskProvisioner;
  host: HostInfo;
  clock: Clock;
  buildArgv: QemuArgvBuilder;
  leases: VmLeases;
  files: FileReader;
  /** Port forwards, SSH keys and the NoCloud seed. Needed only by configs with `ports:` or `cloud-init:`. */
  guest?: GuestAccessPorts;
  /** Test-only crash points between two writes that belong together (docs/crash-points.md). Default: none. */
  crash?: CrashHook;
}
