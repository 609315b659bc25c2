/**
 * `maqet migrate`: with no VM, the event store's schema migrations (as always); with a VM, its
 * live migration to another host (`--to`), or `--cancel` of the one in flight (docs/migration.md).
 *
 * @example
 * ```ts
 * STORE_COMMANDS.map((c) => c.name);
 * ```
 */
import { MaqetError } from "../../errors/maqet-error.ts";
import { type CommandSpec, positiveSeconds } from "./command-spec.ts";

export const STORE_COMMANDS: readonly CommandSpec[] = [
  {
    name: "migrate",
    summary:
      "Live-migrate a running VM to another host (migrate VM --to HOST); with no VM, apply pending event-store schema migrations",
    positionals: [
      {
        name: "vm",
        description: "The VM to migrate live (omit it to migrate the event store's schema)",
        optional: true,
      },
    ],
    options: [
      {
        name: "to",
        type: "string",
        value: "HOST",
        description: "Destination host (the VM's own host: a fresh QEMU there)",
      },
      {
        name: "downtime-ms",
        type: "number",
        value: "MS",
        description: "Longest pause of the guest QEMU may take at switchover (default 300)",
      },
      {
        name: "bandwidth",
        type: "number",
        value: "MIB_S",
        description: "Bandwidth cap of the transfer in MiB/s (default 1024)",
      },
      {
        name: "timeout",
        type: "number",
        value: "SECONDS",
        description: "Cancel the migration if it has not completed by then (default 600)",
      },
      { name: "cancel", type: "boolean", description: "Cancel the VM's migration in flight (it stays on its source)" },
    ],
    examples: [
      "maqet migrate web --to lab2",
      "maqet migrate web --to lab2 --downtime-ms 100 --bandwidth 500 --timeout 120",
      "maqet migrate web --to $(hostname -s)   # a fresh QEMU on the same host",
      "maqet migrate --cancel web",
      "maqet migrate   # the event store's schema",
    ],
    invoke: async (m, input) => {
      const vm = input.vm === undefined ? undefined : String(input.vm);
      if (vm === undefined) {
        if (input.to !== undefined || input.cancel === true) {
          throw new MaqetError(
            "INVALID_ARGUMENT",
            "Which VM? Usage: maqet migrate VM --to HOST, or maqet migrate --cancel VM.",
          );
        }
        return { applied: await m.migrate() };
      }
      if (input.cancel === true) return m.cancelMigration(vm);
      if (input.to === undefined) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          `Where to? Usage: maqet migrate ${vm} --to HOST (\`maqet host ls\` lists the hosts; the VM's own host moves it to a fresh QEMU).`,
        );
      }
      return m.migrateVm(vm, {
        to: String(input.to),
        ...(input["downtime-ms"] !== undefined ? { downtimeMs: Number(input["downtime-ms"]) } : {}),
        ...(input.bandwidth !== undefined ? { bandwidthMiBs: Number(input.bandwidth) } : {}),
        ...(input.timeout !== undefined ? { timeoutMs: positiveSeconds(input.timeout, "a migration") } : {}),
      });
    },
  },
];
