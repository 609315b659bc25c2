/**
 * `inspect`: the exact QEMU command line of a VM — the one its current run was started with
 * (from `vm.started`), or, for a stopped VM (and `start --dry-run`), the one a start would run
 * now, built by the same code as a real start from the config as the store replays it. What the
 * accelerator is and who chose it, and any warning about the stored config, come with it.
 *
 * @example
 * ```ts
 * const { argv, command } = await maqet.inspect("web");
 * console.log(command); // /usr/bin/qemu-system-x86_64 -name guest=web -uuid … -netdev user,id=n0 …
 * ```
 */
import { orderLostNote } from "../../actors/launch-qemu.ts";
import { runtimePaths } from "../../actors/runtime-paths.ts";
import { chosenAccelerator } from "../../config/accelerator-choice.ts";
import type { Accel } from "../../config/vm-config.ts";
import { asVmEvent, vmStreamId } from "../../events/vm-events.ts";
import { shellQuote } from "../../util/shell-quote.ts";
import type { MaqetContext } from "../maqet-context.ts";

export interface VmInspection {
  name: string;
  id: string;
  state: string;
  /** `running`: the argv of the current run; `next-start`: what a start would run now. */
  source: "running" | "next-start";
  /** The qemu-system binary (resolved path; the configured name when it cannot be found). */
  binary: string;
  /** Everything after the binary, word by word. */
  argv: string[];
  /** Binary and argv as one shell-quoted line, to read or to copy. */
  command: string;
  accel: {
    /** `accel:` of the config (`auto` when not written). */
    config: Accel;
    /** The QEMU option that chooses it when the config's own words do (`enable-kvm in arguments`). */
    chosenBy: string | null;
    /** What runs (the current run) or would run (a start now). */
    resolved: string;
  };
  warnings: string[];
}

export interface InspectOps {
  /** The VM's QEMU command line; `planned: true` gives the next start's even while it runs. */
  inspect(name: string, options?: { planned?: boolean }): Promise<VmInspection>;
}

export function inspectOps(ctx: MaqetContext): InspectOps {
  return {
    inspect: (name, options = {}) =>
      ctx.operation(async (rt, orchestrator) => {
        const view = await orchestrator.liveView(name);
        const config = view.config;
        const choice = chosenAccelerator(config);
        const warnings =
          config.argumentOrderLost === undefined ? [] : [orderLostNote(view.name, config.argumentOrderLost)];
        const live = view.status === "running" || view.status === "paused" || view.status === "stopping";
        const base = { name: view.name, id: view.vmId, state: view.status, warnings };
        if (live && options.planned !== true) {
          const events = await rt.store.readStream(vmStreamId(view.vmId));
          const started = events.map((e) => asVmEvent(e)).findLast((e) => e?.type === "vm.started");
          if (started?.type === "vm.started") {
            const { binary, argv, accel } = started.data;
            return {
              ...base,
              source: "running",
              binary,
              argv,
              command: shellQuote([binary, ...argv]),
              accel: { config: config.accel, chosenBy: choice?.source ?? null, resolved: accel },
            };
          }
        }
        const { ports, runtimeRoot } = rt;
        const wanted = config.binary ?? "qemu-system-x86_64";
        const binary = await ports.locator.locate(wanted).catch((error: unknown) => {
          warnings.push(`${(error as Error).message}`);
          return wanted;
        });
        const kvmUsable = config.accel === "tcg" || choice !== undefined ? false : await ports.host.kvmUsable();
        const runtimeDir = `${runtimeRoot}/${view.vmId}`;
        const argv = ports.buildArgv(
          config,
          { vmId: view.vmId, name: view.name, ...runtimePaths(runtimeDir) },
          {
            kvmUsable,
          },
        );
        const i = argv.indexOf("-accel");
        return {
          ...base,
          source: "next-start",
          binary,
          argv,
          command: shellQuote([binary, ...argv]),
          accel: {
            config: config.accel,
            chosenBy: choice?.source ?? null,
            resolved: choice?.accel ?? (i >= 0 ? (argv[i + 1] ?? "tcg") : "tcg"),
          },
        };
      }),
  };
}
