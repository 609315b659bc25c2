/**
 * The operations MAQET users know by MAQET's names, on maqet's model: `add` of several merged
 * files with flag overrides (and `--empty`), `info`, `ls --status`, `rm --all`, `storage
 * orphaned|verify|attach` and `cleanup`. Each is built on the facade's own operations, so every
 * change is an event as usual. docs/maqet-compat.md lists them command by command.
 *
 * @example
 * ```ts
 * await maqet.addConfigs(["base.yaml", "web.yaml"], { name: "web", overrides: { memory: "8G" } });
 * console.log(await maqet.info("web"));
 * console.log(await maqet.storageOrphaned());
 * ```
 */

import { dirname, resolve } from "node:path";
import { mayHaveProcess, type VmView } from "../../actors/vm-view.ts";
import { defaultDataDir, defaultRuntimeRoot } from "../../adapters/default-dirs.ts";
import { loadMergedVmConfig } from "../../adapters/load-vm-configs.ts";
import { assertConfigDiskPaths } from "../../adapters/path-safety.ts";
import { createProcessControl } from "../../adapters/process-control.ts";
import { inspectRuntimeRoot } from "../../adapters/runtime-dir-report.ts";
import { listImageFiles, type PathFact, pathFacts, removeSocketFile } from "../../adapters/storage-scan.ts";
import type { ConfigOverrides } from "../../config/merge-configs.ts";
import { validateVmConfig } from "../../config/parse-vm-config.ts";
import type { VmConfig } from "../../config/vm-config.ts";
import { MaqetError } from "../../errors/maqet-error.ts";
import type { PlacementOptions } from "../cluster-options.ts";
import type { MaqetContext } from "../maqet-context.ts";
import { toVmStatus, type VmStatus } from "../vm-status.ts";

export interface AddConfigsOptions extends PlacementOptions {
  /** VM name; else `name:` of the merged files; else `vm-<8 hex>` (`empty-vm-<8 hex>` with `empty`). */
  name?: string;
  overrides?: ConfigOverrides;
  /** MAQET's `--empty`: a VM with an empty config (no files allowed). */
  empty?: boolean;
  cwd?: string;
}

/** MAQET's `info`: the config summary, plus the config itself. */
export interface VmInfo {
  name: string;
  id: string;
  state: string;
  binary: string;
  memory: string | null;
  cpu: number | null;
  display: string | null;
  vga: string | null;
  accel: string;
  machine: string | null;
  storageCount: number;
  storage: Array<{ name: string; type: string; file: string; size: string | null; interface: string }>;
  shares: Array<{ name: string; path: string; mountTag: string; readonly: boolean }>;
  configPath: string | null;
  config: Record<string, unknown>;
}

/** The statuses `ls --status` accepts: maqet's states and MAQET's names. */
export const LIST_STATUSES = [
  "running",
  "paused",
  "stopped",
  "starting",
  "stopping",
  "created",
  "failed",
  "orphaned",
  "corrupted",
] as const;

export interface OrphanReport {
  /** Directories scanned: the data dir's disks/, images/, snapshots/ and every directory a VM's disk lives in. */
  scanned: string[];
  orphans: Array<{ path: string; bytes: number }>;
  totalBytes: number;
}

export interface StorageVerification {
  vm: string;
  ok: boolean;
  files: Array<PathFact & { role: "disk" | "backing" | "share"; name: string }>;
}

export interface CleanupReport {
  dryRun: boolean;
  /** VMs the store called running whose QEMU is gone: their exit recorded (or, dry run, to be). */
  vms: Array<{ vm: string; was: string; now: string }>;
  /** QMP sockets nobody answers on, of VMs that are not running: removed (or, dry run, to be). */
  sockets: Array<{ path: string; vm: string | null; removed: boolean }>;
}

export interface MaqetCompatOps {
  /** Defines a VM from config files merged left to right, flags on top (MAQET's `add`). */
  addConfigs(files: readonly string[], options?: AddConfigsOptions): Promise<VmStatus>;
  info(name: string): Promise<VmInfo>;
  /** VMs in one status (MAQET's `ls --status`; `created` = never started, `failed` = last start failed). */
  listByStatus(status: string): Promise<VmStatus[]>;
  /** Removes every VM (`rm --all`); `force` kills running ones first, else they are refused before anything is removed. */
  removeAll(options?: { force?: boolean }): Promise<Array<{ name: string; removed: boolean }>>;
  storageOrphaned(): Promise<OrphanReport>;
  storageVerify(name: string): Promise<StorageVerification>;
  /** Defines VM `name` from `files` around an existing image (`storage attach NAME PATH CONFIG`). */
  storageAttach(name: string, path: string, files: readonly string[], options?: { cwd?: string }): Promise<VmStatus>;
  cleanup(options?: { dryRun?: boolean }): Promise<CleanupReport>;
}

export function maqetCompatOps(ctx: MaqetContext): MaqetCompatOps {
  const env = ctx.options.env ?? {};
  const define = (config: VmConfig, name: string, configPath?: string) =>
    ctx.operation(async (_rt, orchestrator) => {
      await assertConfigDiskPaths(config);
      const view = await orchestrator.define(config, { name, ...(configPath ? { configPath } : {}) });
      return toVmStatus(view);
    });
  const ops: MaqetCompatOps = {
    addConfigs: async (files, options = {}) => {
      if (options.empty) {
        if (files.length > 0 || hasOverrides(options.overrides)) {
          throw new MaqetError(
            "INVALID_ARGUMENT",
            "Cannot specify config files or config flags with --empty: an empty VM has no config until `maqet apply`. Drop --empty, or the files.",
          );
        }
        const name = options.name ?? `empty-vm-${crypto.randomUUID().slice(0, 8)}`;
        const config = validateVmConfig({}, { baseDir: resolve(options.cwd ?? process.cwd()), nameOverride: name });
        return define(config, name);
      }
      if (files.length === 0 && !hasOverrides(options.overrides)) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          "Invalid arguments: add needs a config file (maqet add vm.yaml), config flags (--memory 1G --cpu 2), or --empty.",
        );
      }
      const { config, paths } = await loadMergedVmConfig(files, {
        overrides: options.overrides,
        nameOverride: options.name,
        onWarning: ctx.options.onWarning,
        cwd: options.cwd,
      });
      const name = options.name ?? config.name ?? `vm-${crypto.randomUUID().slice(0, 8)}`;
      return define(config, name, paths[0]);
    },
    info: (name) =>
      ctx.operation(async (_rt, orchestrator) => {
        const view = await orchestrator.find(name);
        return infoOf(view);
      }),
    listByStatus: async (status) => {
      if (!(LIST_STATUSES as readonly string[]).includes(status)) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          `Invalid --status '${status}': use one of ${LIST_STATUSES.join(", ")}.`,
          { details: { status } },
        );
      }
      const views = await ctx.operation((_rt, orchestrator) => orchestrator.liveViews());
      return views.filter((v) => matchesStatus(v, status)).map(toVmStatus);
    },
    removeAll: async (options = {}) => {
      const views = await ctx.operation((_rt, orchestrator) => orchestrator.liveViews());
      const running = views.filter((v) => v.status !== "stopped");
      if (running.length > 0 && !options.force) {
        throw new MaqetError(
          "VM_INVALID_STATE",
          `Cannot remove all VMs: ${running.map((v) => `'${v.name}' is ${v.status}`).join(", ")}. Stop them first, or add --force to kill them and remove everything. Nothing was removed.`,
          { details: { running: running.map((v) => v.name) } },
        );
      }
      const out: Array<{ name: string; removed: boolean }> = [];
      for (const view of views) {
        await ctx.withVm(view.vmId, (vm) => vm.remove({ force: options.force === true }));
        out.push({ name: view.name, removed: true });
      }
      return out;
    },
    storageOrphaned: async () => {
      const dataDir = ctx.options.dataDir ?? defaultDataDir(env);
      const views = await ctx.operation((_rt, orchestrator) => orchestrator.views({ includeRemoved: true }));
      const referenced = new Set<string>();
      const dirs = new Set(["disks", "images", "snapshots"].map((d) => `${dataDir}/${d}`));
      for (const view of views) {
        for (const disk of view.config.storage) {
          dirs.add(dirname(disk.file));
          if (view.status === "removed") continue;
          referenced.add(disk.file);
          if (disk.backingFile) referenced.add(disk.backingFile);
        }
      }
      const scanned = [...dirs].sort();
      const files = (await listImageFiles(scanned)).filter((f) => !referenced.has(f));
      const facts = await pathFacts(files);
      const orphans = facts.map((f) => ({ path: f.path, bytes: f.bytes ?? 0 }));
      return { scanned, orphans, totalBytes: orphans.reduce((n, o) => n + o.bytes, 0) };
    },
    storageVerify: (name) =>
      ctx.operation(async (_rt, orchestrator) => {
        const view = await orchestrator.find(name);
        const wanted: Array<{ path: string; role: "disk" | "backing" | "share"; name: string }> = [];
        for (const disk of view.config.storage) {
          wanted.push({ path: disk.file, role: "disk", name: disk.name });
          if (disk.backingFile) wanted.push({ path: disk.backingFile, role: "backing", name: disk.name });
        }
        for (const share of view.config.shares ?? [])
          wanted.push({ path: share.path, role: "share", name: share.name });
        const facts = await pathFacts(wanted.map((w) => w.path));
        const files = facts.map((f, i) => ({ ...f, role: wanted[i]!.role, name: wanted[i]!.name }));
        return { vm: view.name, ok: files.every((f) => f.exists), files };
      }),
    storageAttach: async (name, pathArg, files, options = {}) => {
      const cwd = resolve(options.cwd ?? process.cwd());
      const path = resolve(cwd, pathArg);
      const [fact] = await pathFacts([path]);
      if (!fact?.exists || fact.kind !== "file") {
        throw new MaqetError(
          "PATH_NOT_FOUND",
          `Storage not found: ${path}. List unattached images with \`maqet storage orphaned\`.`,
          { details: { path } },
        );
      }
      if (files.length === 0) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          `Invalid arguments: storage attach needs the VM's config (maqet storage attach ${name} ${pathArg} vm.yaml).`,
        );
      }
      const { config, paths } = await loadMergedVmConfig(files, {
        nameOverride: name,
        onWarning: ctx.options.onWarning,
        cwd,
      });
      if (!config.storage.some((d) => d.file === path)) {
        const named = config.storage.map((d) => d.file).join(", ") || "no disks";
        throw new MaqetError(
          "CONFIG_INVALID",
          `Configuration mismatch: ${paths.join(" + ")} does not use ${path} (its disks: ${named}). Set the disk's file: to that path.`,
          { details: { path } },
        );
      }
      return define(config, name, paths[0]);
    },
    cleanup: async (options = {}) => {
      const dryRun = options.dryRun === true;
      const runtimeRoot = ctx.options.runtimeDir ?? defaultRuntimeRoot(env);
      const processes = ctx.options.ports?.processes ?? createProcessControl({ runtimeRoot });
      const views = await ctx.operation((_rt, orchestrator) => orchestrator.views());
      const report: CleanupReport = { dryRun, vms: [], sockets: [] };
      for (const view of views) {
        if (!mayHaveProcess(view) || view.pid === undefined) continue;
        if (processes.probe(view.pid, view.vmId) === "alive") continue;
        if (dryRun) {
          report.vms.push({ vm: view.name, was: view.status, now: "stopped" });
          continue;
        }
        const now = await ctx.operation((_rt, orchestrator) => orchestrator.liveView(view.vmId));
        report.vms.push({ vm: view.name, was: view.status, now: now.status });
      }
      const after = dryRun ? views : await ctx.operation((_rt, orchestrator) => orchestrator.views());
      for (const dir of (await inspectRuntimeRoot(runtimeRoot)).vms) {
        if (dir.socket === undefined || dir.socket.answers) continue;
        const view = after.find((v) => v.vmId === dir.vmId);
        if (view !== undefined && mayHaveProcess(view)) continue;
        const removed = dryRun ? false : await removeSocketFile(dir.socket.path);
        report.sockets.push({ path: dir.socket.path, vm: view?.name ?? null, removed });
      }
      return report;
    },
  };
  return ops;
}

function matchesStatus(view: VmView, status: string): boolean {
  if (status === "created")
    return view.status === "stopped" && view.startedAt === undefined && !view.lastStop && !view.lastError;
  if (status === "failed")
    return view.status === "stopped" && view.lastError !== undefined && view.lastStop === undefined;
  // maqet records a vanished QEMU when it looks (ls), so nothing stays orphaned or corrupted.
  if (status === "orphaned" || status === "corrupted") return false;
  return view.status === status;
}

function infoOf(view: VmView): VmInfo {
  const c = view.config;
  return {
    name: view.name,
    id: view.vmId,
    state: view.status,
    binary: c.binary ?? "qemu-system-x86_64",
    memory: c.memory ?? null,
    cpu: c.cpu ?? null,
    display: c.display ?? null,
    vga: c.vga ?? null,
    accel: c.accel,
    machine: c.machine ?? null,
    storageCount: c.storage.length + (c.shares?.length ?? 0),
    storage: c.storage.map((d) => ({
      name: d.name,
      type: d.type,
      file: d.file,
      size: d.size ?? null,
      interface: d.interface,
    })),
    shares: (c.shares ?? []).map((s) => ({ name: s.name, path: s.path, mountTag: s.mountTag, readonly: s.readonly })),
    configPath: view.configPath ?? null,
    config: structuredClone(c) as unknown as Record<string, unknown>,
  };
}

function hasOverrides(o: ConfigOverrides | undefined): boolean {
  return o !== undefined && Object.values(o).some((v) => v !== undefined && v !== false);
}
