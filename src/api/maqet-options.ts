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
import type { EventStore } from "../events/event-store.ts";

export interface MaqetOptions {
  /** PostgreSQL server URL; when absent the embedded PGlite store under `dataDir` is used. */
  databaseUrl?: string;
  /** Data directory (embedded store). Default `$XDG_DATA_HOME/maqet` from `env`, else `~/.local/share/maqet`. */
  dataDir?: string;
  /** Root of per-VM runtime directories. Default `$XDG_RUNTIME_DIR/maqet` from `env`, else `/tmp/maqet-<uid>`. */
  runtimeDir?: string;
  /** Environment used for defaults and binary overrides (`MAQET_QEMU_IMG`, `PATH`...). Default: none. */
  env?: Record<string, string | undefined>;
  /** Recorded as each event's `metadata.source`. Default `library`. */
  source?: string;
  /** Receives non-fatal notes, e.g. a MAQET config key that has no effect. Default: ignored. */
  onWarning?: (message: string) => void;
  /** How long to wait for another process holding the embedded store. Default 5000 ms. */
  lockWaitMs?: number;
  /** Replace adapters (tests). */
  ports?: Partial<VmPorts>;
  /** Use this store instead of opening one. It is not closed by `close()`. */
  store?: EventStore;
}
