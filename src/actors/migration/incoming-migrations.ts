/**
 * The destination side of a live migration, kept by the process that will own the VM next (the
 * destination host's agent, or the same process for a move to a fresh QEMU on the same host):
 * `prepare` starts QEMU with the VM's config and `-incoming defer -S` and makes it listen;
 * `finish` waits for the incoming state to be complete, resumes the guest (`cont`) when it ran
 * on the source, and lets go of the QMP session (the VM's actor takes it over); `abort` kills an
 * incoming QEMU whose migration will not happen. Nothing here records a fact: the coordinator
 * (migrate-out.ts) does, on the VM's stream.
 *
 * @example
 * ```ts
 * const incoming = new IncomingMigrations(ports, "lab2");
 * const { uri, target } = await incoming.prepare({ migrationId, vmId, name, config });
 * // ... the source migrates to `uri`, ownership moves ...
 * await incoming.finish({ migrationId, resume: true });
 * ```
 */
import type { VmConfig } from "../../config/vm-config.ts";
import { MaqetError } from "../../errors/maqet-error.ts";
import type { MigrationTarget } from "../../events/migration-events.ts";
import { type LaunchedVm, launchQemu } from "../launch-qemu.ts";
import type { VmPorts } from "../ports.ts";
import { enableMigrationEvents, queryMigrate, runState } from "./migration-qmp.ts";

export interface PrepareIncomingRequest {
  migrationId: string;
  vmId: string;
  name: string;
  config: VmConfig;
  /** The source's runtime directory when it is on this host: the target takes another. */
  sourceRuntimeDir?: string;
  timeoutMs?: number;
}

export interface PreparedIncoming {
  /** Where the source sends the migration stream (`tcp:ADDRESS:PORT`). */
  uri: string;
  target: MigrationTarget;
}

export interface FinishIncomingRequest {
  migrationId: string;
  /** Resume the guest (it ran on the source). */
  resume: boolean;
  /** The owner epoch the commit gave (a cluster: the destination's agent stamps it from now on). */
  epoch?: number;
  /** How long to wait for the incoming state to complete (default 60 s; 0: only if it has arrived). */
  timeoutMs?: number;
}

/** The destination's migration-facing operations (local, or routed to the destination host's agent). */
export interface MigrationTargetPort {
  prepare(request: PrepareIncomingRequest): Promise<PreparedIncoming>;
  finish(request: FinishIncomingRequest): Promise<{ resumed: boolean; arrived?: boolean }>;
  abort(request: { migrationId: string }): Promise<{ aborted: boolean }>;
}

interface Pending {
  vmId: string;
  vm: LaunchedVm;
  since: number;
}

/** One incoming QEMU waiting for its migration to finish or be aborted. */
export interface IncomingEntry {
  migrationId: string;
  vmId: string;
  pid: number;
  /** When it was prepared (the ports' clock). */
  since: number;
}

const DEFAULT_PREPARE_TIMEOUT_MS = 30_000;
/** The second runtime directory of a VM moved to a fresh QEMU on its own host (`<vm-id>.m`). */
export const SAME_HOST_SUFFIX = ".m";
const DEFAULT_FINISH_TIMEOUT_MS = 60_000;

export class IncomingMigrations implements MigrationTargetPort {
  readonly #pending = new Map<string, Pending>();

  /**
   * `address`: where this host's incoming QEMUs listen for the migration stream (the host's
   * address as sources reach it; `--migration-address`, default loopback).
   */
  constructor(
    private readonly ports: VmPorts,
    private readonly host: string,
    private readonly address = "127.0.0.1",
  ) {}

  /** Incoming QEMUs this process started and has not finished or aborted (by migration id). */
  get pending(): string[] {
    return [...this.#pending.keys()];
  }

  /** Whether this process is receiving the VM (its incoming QEMU is pending here). */
  receives(vmId: string): boolean {
    for (const p of this.#pending.values()) if (p.vmId === vmId) return true;
    return false;
  }

  entries(): IncomingEntry[] {
    return [...this.#pending].map(([migrationId, p]) => ({ migrationId, vmId: p.vmId, pid: p.vm.pid, since: p.since }));
  }

  async prepare(request: PrepareIncomingRequest): Promise<PreparedIncoming> {
    const { ports } = this;
    const base = ports.processes.runtimeDirOf(request.vmId);
    // Same host: the source holds its runtime directory (sockets, pidfile); the target alternates
    // between two. The suffix is short: a unix socket's path has at most 107 bytes.
    const runtimeKey = request.sourceRuntimeDir === base ? `${request.vmId}${SAME_HOST_SUFFIX}` : request.vmId;
    const vm = await launchQemu(ports, {
      vmId: request.vmId,
      name: request.name,
      config: request.config,
      timeoutMs: request.timeoutMs ?? DEFAULT_PREPARE_TIMEOUT_MS,
      incoming: true,
      runtimeKey,
    });
    try {
      await enableMigrationEvents(vm.session);
      await vm.session.execute("migrate-incoming", { uri: `tcp:${this.address}:0` });
      const info = await queryMigrate(vm.session);
      const port = info["socket-address"]?.find((a) => a.type === "inet")?.port;
      if (port === undefined) {
        throw new MaqetError(
          "MIGRATION_FAILED",
          `The destination QEMU of VM '${request.name}' did not say which port it listens on.`,
        );
      }
      this.#pending.set(request.migrationId, { vmId: request.vmId, vm, since: this.ports.clock.now() });
      // An incoming QEMU whose source went away exits by itself (QEMU < 9.1): forget it then.
      vm.launched.exit.then(() => this.#forget(request.migrationId, vm)).catch(() => undefined);
      return {
        uri: `tcp:${hostForUri(this.address)}:${port}`,
        target: {
          host: this.host,
          pid: vm.pid,
          qmpSocket: vm.qmpSocket,
          runtimeDir: vm.runtimeDir,
          pidFile: vm.pidFile,
          argv: vm.argv,
          binary: vm.binary,
          accel: vm.accel,
          qemuVersion: vm.qemuVersion,
        },
      };
    } catch (error) {
      await this.#kill(vm);
      throw error;
    }
  }

  async finish(request: FinishIncomingRequest): Promise<{ resumed: boolean; arrived?: boolean }> {
    const pending = this.#pending.get(request.migrationId);
    if (pending === undefined) {
      throw new MaqetError(
        "MIGRATION_NOT_RUNNING",
        `No incoming migration ${request.migrationId} on host '${this.host}' (its QEMU exited, or this agent restarted: the VM's next load finishes it).`,
        { details: { migrationId: request.migrationId, host: this.host } },
      );
    }
    const { session } = pending.vm;
    const deadline = this.ports.clock.now() + (request.timeoutMs ?? DEFAULT_FINISH_TIMEOUT_MS);
    // `inmigrate` until the whole state has arrived; then paused (-S), waiting for `cont`.
    for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
      const state = await runState(session);
      if (state !== "inmigrate") break;
      if (request.timeoutMs === 0) return { resumed: false, arrived: false };
      if (this.ports.clock.now() > deadline) {
        throw new MaqetError(
          "TIMEOUT",
          `The destination QEMU of migration ${request.migrationId} did not receive the VM's state in time.`,
        );
      }
      await this.ports.clock.sleep(wait);
    }
    this.ports.crash?.("migrate.finishing");
    if (request.resume) await session.execute("cont");
    this.#pending.delete(request.migrationId);
    // The VM's actor connects next: QMP takes one client at a time.
    await session.close().catch(() => undefined);
    return { resumed: request.resume, arrived: true };
  }

  async abort(request: { migrationId: string }): Promise<{ aborted: boolean }> {
    const pending = this.#pending.get(request.migrationId);
    if (pending === undefined) return { aborted: false };
    this.#pending.delete(request.migrationId);
    await this.#kill(pending.vm);
    return { aborted: true };
  }

  /**
   * Lets go of the sessions; the QEMUs keep running (crash-only: one whose ownership already moved
   * is the VM, and the next load finishes its migration; one whose migration never commits is
   * killed by the recovery of that migration).
   */
  async close(): Promise<void> {
    for (const [id, pending] of [...this.#pending]) {
      this.#pending.delete(id);
      await pending.vm.session.close().catch(() => undefined);
    }
  }

  #forget(migrationId: string, vm: LaunchedVm): void {
    if (this.#pending.get(migrationId)?.vm === vm) this.#pending.delete(migrationId);
  }

  async #kill(vm: LaunchedVm): Promise<void> {
    await vm.session.close().catch(() => undefined);
    this.ports.processes.kill(vm.pid, "SIGKILL");
    await Promise.race([vm.launched.exit, this.ports.clock.sleep(2000)]).catch(() => undefined);
  }
}

/** An IPv6 address goes in brackets in a QEMU URI. */
function hostForUri(address: string): string {
  return address.includes(":") && !address.startsWith("[") ? `[${address}]` : address;
}
