/**
 * The start effect: create missing disks, spawn QEMU detached and paused (`-S`), connect QMP,
 * tighten the socket, then `cont`. Any failure kills what it started and reports what QEMU said.
 *
 * @example
 * ```ts
 * const run = await launchQemu(ports, { vmId, name, config, timeoutMs: 30000 });
 * await run.session.execute("query-status");
 * ```
 */
import { chosenAccelerator } from "../config/accelerator-choice.ts";
import type { PortForward, VmConfig } from "../config/vm-config.ts";
import { isMaqetError, MaqetError } from "../errors/maqet-error.ts";
import { type GuestAccess, prepareGuestAccess, withForwardRefusal } from "./guest-access.ts";
import type { LaunchedProcess, QmpSession, VmPorts } from "./ports.ts";
import { runtimePaths, SERIAL_CHARDEV_ID } from "./runtime-paths.ts";

/** How long a failed QMP connect waits for QEMU's exit before blaming the socket. */
const EXIT_GRACE_MS = 2000;

export interface LaunchInput {
  vmId: string;
  name: string;
  config: VmConfig;
  timeoutMs: number;
  signal?: AbortSignal;
  /**
   * A live migration's destination: QEMU starts with `-incoming defer` and stays paused (no
   * `cont`); its disks must already exist (shared storage: nothing is created).
   */
  incoming?: boolean;
  /** The runtime directory's name under the root (default: the VM id; a migration target on the same host needs another). */
  runtimeKey?: string;
}

export interface CreatedDisk {
  drive: string;
  file: string;
  format: string;
  size?: string;
  durationMs: number;
}

export interface LaunchedVm {
  pid: number;
  session: QmpSession;
  launched: LaunchedProcess;
  qmpSocket: string;
  runtimeDir: string;
  pidFile: string;
  argv: string[];
  binary: string;
  accel: string;
  qemuVersion: string;
  durationMs: number;
  disksCreated: CreatedDisk[];
  /** `ports:` with this run's host ports (a `0` resolved). */
  forwards?: PortForward[];
}

/** Thrown by {@link launchQemu}; carries the disks it created so they can still be recorded. */
export class LaunchError extends MaqetError {
  constructor(
    cause: unknown,
    readonly disksCreated: CreatedDisk[],
    readonly durationMs: number,
    readonly stderr: string | undefined,
  ) {
    const base = isMaqetError(cause) ? cause : undefined;
    super(base?.code ?? "START_FAILED", base?.message ?? String((cause as Error)?.message ?? cause), {
      cause,
      details: { ...(base?.details ?? {}), stderr },
    });
  }
}

/**
 * Checks what a start needs before anything is recorded: the qemu-system binary, and qemu-img
 * when a disk must be created. A missing tool is the host's problem, not a VM fact, so it fails
 * the command with the install hint and leaves the stream untouched.
 */
export async function preflightLaunch(ports: VmPorts, config: VmConfig): Promise<void> {
  await ports.locator.locate(config.binary ?? "qemu-system-x86_64");
  if ((await ports.disks.missing(createdDisks(config))).length > 0) await ports.locator.locate("qemu-img");
  for (const share of config.shares ?? []) await ports.disks.checkShare?.(share);
}

export async function launchQemu(ports: VmPorts, input: LaunchInput): Promise<LaunchedVm> {
  const { vmId, name, config, timeoutMs, signal } = input;
  const t0 = ports.clock.now();
  const disksCreated: CreatedDisk[] = [];
  let launched: LaunchedProcess | undefined;
  let session: QmpSession | undefined;
  let logFile: string | undefined;
  let access: GuestAccess = {};
  ports.crash?.("start.requested");
  try {
    if (input.incoming) await refuseUnsharedDisks(ports, name, config);
    for (const disk of createdDisks(config)) {
      const result = await ports.disks.ensure(disk, signal);
      if (result.created) {
        ports.crash?.("start.disk-created");
        disksCreated.push({
          drive: disk.name,
          file: disk.file,
          format: disk.type,
          size: disk.size,
          durationMs: result.durationMs,
        });
      }
    }
    const binary = await ports.locator.locate(config.binary ?? "qemu-system-x86_64");
    const kvmUsable = config.accel === "tcg" ? false : await ports.host.kvmUsable();
    const runtimeDir = await ports.processes.prepareRuntimeDir(input.runtimeKey ?? vmId);
    access = await prepareGuestAccess(ports, { vmId, name, config, runtimeDir });
    const paths = {
      vmId,
      name,
      ...runtimePaths(runtimeDir),
      ...access,
    };
    logFile = config.logFile ?? runtimePaths(runtimeDir).logFile;
    const argv = ports.buildArgv(config, paths, { kvmUsable });
    if (input.incoming) argv.push("-incoming", "defer");
    launched = await ports.processes.launch({ binary, args: argv, runtimeDir, logFile }, signal);
    ports.crash?.("start.spawned");
    const current = launched;
    const exitError = (exit: { code: number | null; signal: string | null }) =>
      new MaqetError(
        "START_FAILED",
        `QEMU for VM '${name}' exited during start (code ${exit.code}, signal ${exit.signal}).`,
        {
          details: { exit },
        },
      );
    // QEMU that dies on a bad option never opens its socket: fail on its exit, not on the timeout.
    const exitedEarly = current.exit.then((exit) => {
      throw exitError(exit);
    });
    exitedEarly.catch(() => undefined);
    session = await Promise.race([ports.qmp.connect(paths.qmpSocket, { timeoutMs, signal }), exitedEarly]).catch(
      async (error: unknown) => {
        // QEMU refusing a late option (a -netdev, a -device) opens the socket, then closes it and
        // exits: the socket's "closed before the greeting" can win the race against the exit.
        // When QEMU is exiting, its exit (and so its stderr) is the reason, not the socket.
        if (isMaqetError(error, "START_FAILED") || signal?.aborted) throw error;
        const exit = await Promise.race([current.exit, ports.clock.sleep(EXIT_GRACE_MS).then(() => undefined)]);
        throw exit === undefined ? error : exitError(exit);
      },
    );
    await ports.processes.secureSocket(paths.qmpSocket);
    // The console socket exists by now (QEMU creates every chardev before it answers QMP).
    if (argv.includes(`chardev:${SERIAL_CHARDEV_ID}`)) await ports.processes.secureSocket(paths.serialSocket);
    const accel = await runningAccel(session, config, argv, signal);
    if (!input.incoming) {
      await session.execute("cont", undefined, { signal });
      ports.crash?.("start.resumed");
    }
    const v = session.greeting.version.qemu;
    return {
      pid: current.pid,
      session,
      launched: current,
      qmpSocket: paths.qmpSocket,
      runtimeDir,
      pidFile: paths.pidFile,
      argv,
      binary,
      accel,
      qemuVersion: `${v.major}.${v.minor}.${v.micro}`,
      durationMs: ports.clock.now() - t0,
      disksCreated,
      ...(access.forwards ? { forwards: access.forwards } : {}),
    };
  } catch (error) {
    await session?.close().catch(() => undefined);
    if (launched !== undefined) {
      ports.processes.kill(launched.pid, "SIGKILL");
      await Promise.race([launched.exit, ports.clock.sleep(2000)]).catch(() => undefined);
    }
    const stderr = logFile === undefined ? undefined : await ports.processes.readLogTail(logFile, 4096);
    // The images this start made are removed with it (only those: an existing file is the
    // user's); one that could not be removed stays, and is recorded as created.
    const kept = await discardCreated(ports, disksCreated);
    throw new LaunchError(
      withForwardRefusal(
        withOrderNote(withKvmNote(withStderr(error, name, stderr), config, stderr), name, config),
        stderr,
        access.forwards,
      ),
      kept,
      ports.clock.now() - t0,
      stderr,
    );
  }
}

function withStderr(error: unknown, name: string, stderr: string | undefined): unknown {
  const text = stderr?.trim();
  if (!text || !isMaqetError(error, "START_FAILED")) return error;
  const lastLine = text.split("\n").at(-1) ?? text;
  return new MaqetError("START_FAILED", `VM '${name}' failed to start: ${lastLine}`, {
    cause: error,
    details: error.details,
  });
}

/**
 * What to tell a user whose VM was recorded before maqet kept key order (schema 1 `vm.defined`):
 * which `arguments` mappings may have lost their order, and how to re-record the config.
 *
 * @example
 * ```ts
 * orderLostNote("web", ["arguments[1]"]);
 * // "VM 'web' was recorded before maqet kept the key order of arguments (arguments[1]): QEMU gets their keys in the order the store kept. Re-record the config: maqet apply web FILE (or rm and add)."
 * ```
 */
export function orderLostNote(name: string, paths: readonly string[]): string {
  return `VM '${name}' was recorded before maqet kept the key order of arguments (${paths.join(", ")}): QEMU gets their keys in the order the store kept. Re-record the config: maqet apply ${name} FILE (or rm and add).`;
}

/**
 * The accelerator QEMU really runs, for `vm.started`: QEMU's own `query-kvm` answer (a fallback
 * list like `kvm:tcg`, or `enable-kvm`, is resolved by QEMU, not by maqet), else what the argv asks.
 */
async function runningAccel(
  session: QmpSession,
  config: VmConfig,
  argv: string[],
  signal?: AbortSignal,
): Promise<string> {
  const asked = accelOf(argv) ?? chosenAccelerator(config)?.accel ?? "default";
  const answer = await session.execute("query-kvm", undefined, { signal }).catch(() => undefined);
  const enabled = (answer as { enabled?: unknown } | undefined)?.enabled;
  if (enabled === true) return "kvm";
  if (enabled === false) {
    const others = asked.split(":").filter((a) => a !== "kvm");
    return others[0] ?? "tcg";
  }
  return asked;
}

/** A refused start of a VM that asks for KVM on a host where it does not work: say so. */
function withKvmNote(error: unknown, config: VmConfig, stderr: string | undefined): unknown {
  if (!isMaqetError(error, "START_FAILED") || !/\bkvm\b/i.test(stderr ?? "")) return error;
  const choice = chosenAccelerator(config);
  const wantsKvm = choice === undefined ? config.accel === "kvm" : choice.accel.split(":")[0] === "kvm";
  if (!wantsKvm) return error;
  const by = choice === undefined ? "accel: kvm" : choice.source;
  return new MaqetError(
    "START_FAILED",
    `${error.message} The config asks for KVM (${by}), which this host cannot provide (see \`maqet doctor\`). Use accel: tcg, or accel: auto without enable-kvm, to run here.`,
    { cause: error.cause ?? error, details: error.details },
  );
}

function withOrderNote(error: unknown, name: string, config: VmConfig): unknown {
  const lost = config.argumentOrderLost;
  if (lost === undefined || lost.length === 0 || !isMaqetError(error, "START_FAILED")) return error;
  return new MaqetError("START_FAILED", `${error.message} ${orderLostNote(name, lost)}`, {
    cause: error.cause ?? error,
    details: { ...error.details, argumentOrderLost: lost },
  });
}

async function discardCreated(ports: VmPorts, created: CreatedDisk[]): Promise<CreatedDisk[]> {
  const discard = ports.disks.discard;
  if (discard === undefined) return created;
  const kept: CreatedDisk[] = [];
  for (const disk of created) {
    await discard(disk.file).catch(() => kept.push(disk));
  }
  return kept;
}

/**
 * A migration moves memory and device state, not disks: each disk must be the very file the
 * source uses, reachable at the same path here (shared storage). A missing one is refused before
 * anything starts.
 */
async function refuseUnsharedDisks(ports: VmPorts, name: string, config: VmConfig): Promise<void> {
  const missing = await ports.disks.missing(createdDisks(config));
  if (missing.length === 0) return;
  throw new MaqetError(
    "MIGRATION_STORAGE_NOT_SHARED",
    `VM '${name}' cannot migrate here: its disk${missing.length > 1 ? "s" : ""} ${missing.map((d) => `'${d.file}'`).join(", ")} ` +
      "cannot be found at the same path on the destination. Live migration needs the disks on storage both hosts see " +
      "(NFS, a cluster filesystem, or the same machine). See docs/migration.md.",
    { details: { vm: name, missing: missing.map((d) => d.file) } },
  );
}

/** The disks a start creates when missing: not CD-ROMs (an ISO is the user's, never created). */
function createdDisks(config: VmConfig): VmConfig["storage"] {
  return config.storage.filter((disk) => disk.media !== "cdrom");
}

function accelOf(argv: string[]): string | undefined {
  const i = argv.indexOf("-accel");
  return i >= 0 ? argv[i + 1] : undefined;
}
