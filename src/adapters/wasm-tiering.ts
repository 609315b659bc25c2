/**
 * How V8 compiles the embedded store's WebAssembly (PGlite) in a process that lives for one
 * command.
 *
 * V8 runs WebAssembly first as baseline code (Liftoff) and recompiles a function with its
 * optimising compiler (TurboFan) once the function has run enough (`--wasm-tiering-budget`,
 * default 1,800,000). Opening PGlite and running a command's few statements makes hundreds of
 * Postgres functions "hot" by that measure, so a CLI process spent about as much CPU recompiling
 * them (on background threads, for code it then never ran again) as running them: measured on
 * the 2-core dev machine, a PGlite open plus the migration check cost ~1.3 s of CPU by default
 * and ~0.8 s with a budget a thousand times larger, which behaved like Liftoff only. A process
 * that goes on running (`events --follow`) still gets TurboFan code for what it runs for long.
 * The agent and library users keep V8's default: they live long and run the same statements
 * many times.
 *
 * @example
 * ```ts
 * preferBaselineWasm(); // before the first store open of a one-command process
 * ```
 */
import { setFlagsFromString } from "node:v8";

/** About a thousand times V8's default; below V8's int flag limit. */
const SHORT_PROCESS_TIERING_BUDGET = 2_000_000_000;

let applied = false;

/**
 * Raises V8's WebAssembly tier-up budget for the rest of this process. Affects modules compiled
 * after the call (call it before PGlite loads); a no-op where the runtime has no such flag (Deno).
 */
export function preferBaselineWasm(): void {
  if (applied) return;
  applied = true;
  if (typeof (globalThis as { Deno?: unknown }).Deno !== "undefined") return;
  try {
    setFlagsFromString(`--wasm-tiering-budget=${SHORT_PROCESS_TIERING_BUDGET}`);
  } catch {
    // An unknown flag only costs the CPU this saves.
  }
}
