/**
 * Options of {@link createMaqet}: where the store and runtime dirs live, the environment used
 * for defaults, and adapters to replace in tests.
 *
 * @example
 * ```ts
 * const options: MaqetOptions = { dataDir: "/var/lib/app/maqet", source: "my-app" };
 * ```
 */

import type { VmPorts } from "../actors/ports.ts";
import type { QmpRules } from "../config/qmp-rules.ts";
import type { EventStore } from "../events/event-store.ts";
import type { ClusterOptions } from "./cluster-options.ts";

export interface MaqetOptions {
  /**
   * Talk to a running `maqet agent` instead of opening a store: its unix socket path, or
   * `http://HOST:PORT` (with `agentToken`). The returned instance has the same interface; see
   * docs/agent.md ("The library, remote"). Every other option but `source` and `env` is ignored.
   */
  agent?: string;
  /** Bearer token for an agent reached over TCP. */
  agentToken?: string;
  /** PostgreSQL server URL; when absent the embedded PGlite store under `dataDir` is used. */
  databaseUrl?: string;
  /** Data directory (embedded store). Default `$XDG_DATA_HOME/maqet` from `env`, else `~/.local/share/maqet`. */
  dataDir?: string;
  /** Root of per-VM runtime directories. Default `$XDG_RUNTIME_DIR/maqet` from `env`, else `/tmp/maqet-<uid>`. */
  runtimeDir?: string;
  /** Environment used for defaults and binary overrides (`MAQET_QEMU_IMG`, `PATH`...). Default: none. */
  env?: Record<string, string | undefined>;
  /** What this process is doing, shown to another process that finds a VM busy. Default: argv. */
  command?: string;
  /** Recorded as each event's `metadata.source`. Default `library`. */
  source?: string;
  /** Receives non-fatal notes, e.g. a MAQET config key that has no effect. Default: ignored. */
  onWarning?: (message: string) => void;
  /** How long to wait for another process holding the embedded store. Default 5000 ms. */
  lockWaitMs?: number;
  /**
   * Called with the SQL of each statement sent to the store's database (BEGIN/COMMIT included),
   * before it is sent: diagnostics, and tests that hold a path to its statement count (a warm
   * `maqet.qmp()` sends one). Default: none.
   */
  onStatement?: (sql: string) => void;
  /**
   * Global QMP rules (`allow`/`deny`, as in a VM config's `qmp:` section): checked before the VM
   * is looked up, for every VM. A function is called before each QMP command (so an edited
   * policy applies at once); if it throws, the command is not run. The CLI passes one that reads
   * `$XDG_CONFIG_HOME/maqet/config.yaml`. Default: none (the tiers alone decide). See docs/security.md.
   */
  qmpPolicy?: QmpRules | (() => QmpRules | undefined | Promise<QmpRules | undefined>);
  /** Replace adapters (tests). */
  ports?: Partial<VmPorts>;
  /** Use this store instead of opening one. It is not closed by `close()`. */
  store?: EventStore;
  /**
   * Keep the read models (the VM list and the other projections) caught up in the background,
   * woken by every append the store's subscription sees (this process's and others'), polling
   * every second besides. For long-lived processes: reads then find them current. Failures go to
   * `onWarning`. Without it each read catches up first, which is enough for short-lived ones
   * (the CLI). Default false.
   */
  liveProjections?: boolean;
  /**
   * For long-lived processes (the agent, a service embedding maqet): keep one live actor per VM.
   * When the instance opens (its first call), every VM that is not removed is loaded and a
   * running QEMU reattached (what happened while nobody watched is recorded then); while it
   * runs, every QEMU is watched: an exit is recorded within a second (`crashed`, or `shutdown`
   * after a guest power-off), and what the guest does on its own (reset, panic, pause on I/O
   * error, suspend) as it happens, with no command running. The instance holds the VMs' leases
   * (other processes get VM_BUSY for commands that change a VM) and renews them; a sweep every
   * 2 s takes VMs added since or let go by another process. `close()` stops watching and
   * releases the leases; QEMU keeps running. Problems go to `onWarning` (prefixed
   * `supervision:`). See docs/lifecycle.md. Default false.
   */
  supervise?: boolean;
  /**
   * Test only: kill this process (SIGKILL) when it reaches the named crash point (the CLI reads
   * `MAQET_CRASH_AT`). Unknown names are refused. See docs/crash-points.md. Default: none.
   */
  crashAt?: string;
  /** Many hosts on one PostgreSQL: this instance's host name, and whether it joins as a host (docs/cluster.md). */
  cluster?: ClusterOptions;
}
