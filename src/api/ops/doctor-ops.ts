/**
 * `maqet doctor`: what this host can do and what is wrong, in one report. It checks, and
 * changes nothing:
 *
 * - binaries: qemu-system-x86_64 and qemu-img (path, version, how found: override, environment
 *   variable, explicit path or PATH), qemu-io (optional);
 * - accelerator: /dev/kvm usable, and KVM really working (a firmware-only QEMU under
 *   `-accel kvm`: `query-kvm`, then a vCPU that runs), or TCG only;
 * - store: reachable and migrated (opening it applies pending migrations);
 * - runtime directory: owned by you, mode 0700 (each VM's too), sockets 0600;
 * - stale sockets: a QMP socket nobody answers on, or of a VM the store says is not running.
 *
 * @example
 * ```ts
 * const report = await maqet.doctor();
 * report.checks.filter((c) => c.status !== "ok");
 * ```
 */
import { migrations } from "../../../migrations/index.ts";
import { binaryVersion, type KvmProbe, probeKvm } from "../../adapters/accel-probe.ts";
import type { CountingBinaryLocator } from "../../adapters/binary-locator.ts";
import { defaultDataDir, defaultRuntimeRoot } from "../../adapters/default-dirs.ts";
import { createHostInfo } from "../../adapters/host-info.ts";
import { accelFor } from "../../adapters/qemu-argv.ts";
import { inspectRuntimeRoot } from "../../adapters/runtime-dir-report.ts";
import { isMaqetError } from "../../errors/maqet-error.ts";
import { diskToolsFor } from "../disk-tools.ts";
import type { MaqetContext } from "../maqet-context.ts";

export type CheckStatus = "ok" | "warn" | "fail";

export interface DoctorCheck {
  /** e.g. `binary:qemu-img`, `kvm`, `store`, `runtime-dir`, `socket:<vmId>`. */
  name: string;
  status: CheckStatus;
  summary: string;
  /** What to do about it, for warn and fail. */
  fix?: string;
}

export interface DoctorBinary {
  program: string;
  found: boolean;
  required: boolean;
  path?: string;
  /** override, env:MAQET_QEMU_IMG, env:MAQET_QEMU_SYSTEM, path or PATH. */
  how?: string;
  version?: string;
  error?: string;
}

export interface DoctorReport {
  /** False when any check failed. */
  ok: boolean;
  checks: DoctorCheck[];
  binaries: DoctorBinary[];
  accelerator: {
    kvm: KvmProbe | { works: false; skipped: string };
    /** What `accel: auto` picks at `start` on this host (the same test start makes: /dev/kvm read-write). */
    auto: "kvm" | "tcg";
    /** What we advise for real (kernel) guests: kvm only when a vCPU really ran under it on hardware virtualization. */
    recommended: "kvm" | "tcg";
  };
  store: {
    reachable: boolean;
    kind: "postgres" | "pglite";
    location: string;
    migrations: number;
    appliedNow: string[];
    error?: string;
  };
  runtimeDir: { path: string; exists: boolean; mode?: string; problems: string[] };
  staleSockets: { path: string; vmId: string; vm?: string; reason: string }[];
}

export interface DoctorOps {
  /** Checks this host; `ok` is false when a check failed (the CLI's `--strict` exits 1 then). */
  doctor(options?: { skipKvm?: boolean }): Promise<DoctorReport>;
}

export function doctorOps(ctx: MaqetContext): DoctorOps {
  return {
    async doctor(options = {}) {
      const checks: DoctorCheck[] = [];
      const env = ctx.options.env ?? {};
      const tools = diskToolsFor(ctx.options);
      const locator = tools.locator as Partial<CountingBinaryLocator>;

      // ---- binaries
      const binaries: DoctorBinary[] = [];
      for (const [program, required] of [
        ["qemu-system-x86_64", true],
        ["qemu-img", true],
        ["qemu-io", false],
      ] as const) {
        const entry: DoctorBinary = { program, found: false, required };
        try {
          const found = locator.resolve
            ? await locator.resolve(program)
            : { path: await tools.locator.locate(program), how: "locator" };
          entry.found = true;
          entry.path = found.path;
          entry.how = found.how;
          entry.version =
            program === "qemu-img"
              ? await tools.qemuImg.version().catch(() => undefined)
              : await binaryVersion(found.path).catch(() => undefined);
        } catch (error) {
          entry.error = error instanceof Error ? error.message : String(error);
        }
        binaries.push(entry);
        checks.push(
          entry.found
            ? {
                name: `binary:${program}`,
                status: entry.version === undefined ? "warn" : "ok",
                summary: `${entry.path} (${entry.how})${entry.version ? `, version ${entry.version}` : ", version unreadable"}`,
                ...(entry.version === undefined ? { fix: `Run ${entry.path} --version to see what is wrong.` } : {}),
              }
            : {
                name: `binary:${program}`,
                status: required ? "fail" : "warn",
                summary: required ? "not found" : "not found (optional: the test suite writes disk patterns with it)",
                fix: entry.error,
              },
        );
      }

      // ---- accelerator
      const qemu = binaries[0]!;
      const kvm: DoctorReport["accelerator"]["kvm"] =
        options.skipKvm || !qemu.found
          ? { works: false, skipped: options.skipKvm ? "skipped (--skip-kvm)" : "qemu-system-x86_64 not found" }
          : await probeKvm(qemu.path!);
      if ("skipped" in kvm) {
        checks.push({ name: "kvm", status: "warn", summary: `KVM not probed: ${kvm.skipped}` });
      } else if (kvm.works) {
        checks.push({
          name: "kvm",
          status: "ok",
          summary: `KVM works: query-kvm enabled, a firmware-only VM ran under it (${kvm.durationMs} ms)`,
        });
        if (kvm.hardwareVirtualization === false) {
          checks.push({
            name: "kvm:cpu",
            status: "warn",
            summary: "no vmx/svm flag in /proc/cpuinfo: this KVM is nested or paravirtual (e.g. PVM)",
            fix: "Firmware runs under it, but a stock kernel may hang in early boot: use accel: tcg for real guests.",
          });
        }
      } else {
        checks.push({
          name: "kvm",
          status: "warn",
          summary: `KVM not usable${kvm.error ? `: ${kvm.error}` : kvm.status ? ` (QEMU stopped in state ${kvm.status})` : ""}; VMs run with TCG (slower)`,
          fix: kvm.device
            ? "Give this user read-write access to /dev/kvm (e.g. add it to the kvm group), or use accel: tcg."
            : "Load the kvm module (kvm_intel or kvm_amd) if the CPU supports it, or use accel: tcg.",
        });
      }
      const recommended = kvm.works && !("skipped" in kvm) && kvm.hardwareVirtualization !== false ? "kvm" : "tcg";
      // What start does with accel: auto, asked the way start asks it.
      const auto = accelFor("auto", await createHostInfo().kvmUsable());

      // ---- store
      const kind = ctx.options.databaseUrl ? "postgres" : "pglite";
      const location = ctx.options.databaseUrl
        ? redact(ctx.options.databaseUrl)
        : `${ctx.options.dataDir ?? defaultDataDir(env)}/pglite`;
      const store: DoctorReport["store"] = {
        reachable: false,
        kind,
        location,
        migrations: migrations.length,
        appliedNow: [],
      };
      let views: { vmId: string; name: string; status: string }[] = [];
      try {
        const rt = await ctx.open();
        store.reachable = true;
        store.appliedNow = await rt.migrate();
        views = (await rt.orchestrator.views({ includeRemoved: true })).map((v) => ({
          vmId: v.vmId,
          name: v.name,
          status: v.status,
        }));
        checks.push({
          name: "store",
          status: "ok",
          summary: `${kind} at ${location} reachable, schema current (${migrations.length} migrations${store.appliedNow.length ? `; applied now: ${store.appliedNow.join(", ")}` : ""})`,
        });
      } catch (error) {
        store.error = error instanceof Error ? error.message : String(error);
        checks.push({
          name: "store",
          status: "fail",
          summary: `${kind} at ${location} not usable: ${store.error}`,
          fix: isMaqetError(error, "STORE_LOCKED")
            ? "Another maqet process holds the embedded store; wait for it, or use a PostgreSQL server (--db)."
            : "Check --db / MAQET_DATABASE_URL, or the data directory's permissions.",
        });
      }

      // ---- runtime directory and sockets
      const root = ctx.options.runtimeDir ?? defaultRuntimeRoot(env);
      const runtime = await inspectRuntimeRoot(root);
      const runtimeDir = {
        path: root,
        exists: runtime.exists,
        ...(runtime.mode !== undefined ? { mode: `0${(runtime.mode & 0o777).toString(8)}` } : {}),
        problems: [...runtime.problems, ...runtime.vms.flatMap((v) => v.problems.map((p) => `${v.vmId}: ${p}`))],
      };
      checks.push(
        runtimeDir.problems.length === 0
          ? {
              name: "runtime-dir",
              status: "ok",
              summary: runtime.exists
                ? `${root} (${runtimeDir.mode}, yours)`
                : `${root} does not exist yet (created 0700 on the first start)`,
            }
          : {
              name: "runtime-dir",
              status: runtime.problems.some((p) => /owned by|symlink|not a directory/.test(p)) ? "fail" : "warn",
              summary: `${root}: ${runtimeDir.problems.join("; ")}`,
              fix: `chmod 700 the directories listed (maqet creates them 0700), or remove ${root} while no VM runs.`,
            },
      );
      const staleSockets: DoctorReport["staleSockets"] = [];
      for (const vm of runtime.vms) {
        if (vm.socket === undefined) continue;
        const view = views.find((v) => v.vmId === vm.vmId);
        const running = view !== undefined && ["running", "paused", "starting", "stopping"].includes(view.status);
        const reason = !vm.socket.answers
          ? "nothing answers on it (QEMU is gone)"
          : store.reachable && !running
            ? view === undefined
              ? "no VM with this id in the store"
              : `the store says VM '${view.name}' is ${view.status}`
            : undefined;
        if (reason === undefined) continue;
        staleSockets.push({ path: vm.socket.path, vmId: vm.vmId, ...(view ? { vm: view.name } : {}), reason });
        checks.push({
          name: `socket:${vm.vmId}`,
          status: "warn",
          summary: `stale QMP socket ${vm.socket.path}${view ? ` (VM '${view.name}')` : ""}: ${reason}`,
          fix: vm.socket.answers
            ? `Something still listens on it: check with \`maqet status ${view?.name ?? vm.vmId}\` before removing anything.`
            : `Remove it: rm ${vm.socket.path} (maqet replaces it on the next start anyway).`,
        });
      }

      return {
        ok: !checks.some((c) => c.status === "fail"),
        checks,
        binaries,
        accelerator: { kvm, auto, recommended },
        store,
        runtimeDir,
        staleSockets,
      };
    },
  };
}

function redact(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password) parsed.password = "***";
    return parsed.toString();
  } catch {
    return "(unparsable URL)";
  }
}
