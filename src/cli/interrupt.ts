/**
 * Ctrl-C while a command waits (`start`, `--wait-for`, a graceful `stop`, `rm`, `apply --restart`):
 * the CLI says what it leaves behind — QEMU runs detached from the terminal, so a VM started or
 * half-stopped keeps running — releases the store (bounded: a wedged store never holds the exit),
 * and exits 130 (128 + SIGINT, the shell's convention; docs/cli.md). A second Ctrl-C exits at
 * once. Whatever was recorded stays consistent: each event append is one transaction, and a
 * request left without its outcome (`vm.start-requested`, `vm.stop-requested`) is resolved by the
 * next command that touches the VM, as after any crash (docs/crash-points.md).
 *
 * @example
 * ```ts
 * const release = watchInterrupt({ command: "stop", vm: "web", progress$: maqet.progress$, stderr, close, exit });
 * try { await run(); } finally { release(); }
 * ```
 */
import type { Observable } from "rxjs";
import type { OperationProgress } from "../api/progress-hub.ts";

/** The exit code after Ctrl-C: 128 + SIGINT (2). */
export const INTERRUPTED_EXIT_CODE = 130;

/** How long the store may take to close after Ctrl-C before the process exits anyway. */
const CLOSE_GRACE_MS = 3000;

export interface InterruptOptions {
  /** The command's registry name (`start`, `stop`, …). */
  command: string;
  /** The VM the command works on, when it names one. */
  vm?: string;
  /** The instance's progress: which step a stop or start is on, QEMU's pid. */
  progress$?: Observable<OperationProgress>;
  stderr(text: string): void;
  /** Releases the store; given {@link CLOSE_GRACE_MS} at most. */
  close(): Promise<void>;
  exit(code: number): void;
  /** Runs first (the CLI erases its live progress line). */
  beforeNote?(): void;
  /** Where SIGINT comes from (default: this process). */
  signals?: Pick<NodeJS.Process, "on" | "off">;
}

/** What the CLI knows of the VM at the moment of Ctrl-C. */
interface Seen {
  pid?: number;
  /** The last step message of a stop or start. */
  step?: string;
  operation?: string;
}

/** Installs the handler; returns the function that removes it (call it when the command ends). */
export function watchInterrupt(options: InterruptOptions): () => void {
  const signals = options.signals ?? process;
  const seen: Seen = {};
  const subscription = options.progress$?.subscribe((p) => {
    if (p.subject !== options.vm || (p.operation !== "vm.stop" && p.operation !== "vm.start")) return;
    if (p.pid !== undefined) seen.pid = p.pid;
    if (!p.done) {
      seen.step = p.step;
      seen.operation = p.operation;
    }
  });
  let interrupted = false;
  const onSigint = (): void => {
    if (interrupted) {
      options.exit(INTERRUPTED_EXIT_CODE);
      return;
    }
    interrupted = true;
    options.beforeNote?.();
    options.stderr(interruptNote(options.command, options.vm, seen));
    const grace = new Promise<void>((resolve) => setTimeout(resolve, CLOSE_GRACE_MS).unref?.());
    void Promise.race([options.close().catch(() => undefined), grace]).then(() => options.exit(INTERRUPTED_EXIT_CODE));
  };
  signals.on("SIGINT", onSigint);
  return () => {
    subscription?.unsubscribe();
    signals.off("SIGINT", onSigint);
  };
}

/**
 * The words after Ctrl-C: what was interrupted and what is left running, with the command that
 * deals with it.
 *
 * @example
 * ```ts
 * interruptNote("start", "web", { pid: 4242 });
 * // "maqet: interrupted: the start of VM 'web' was not finished; VM 'web' is still running (pid 4242). Stop it with `maqet stop web`."
 * ```
 */
export function interruptNote(command: string, vm: string | undefined, seen: Seen): string {
  if (vm === undefined) return `maqet: interrupted (${command}).`;
  const running = `VM '${vm}' is still running${seen.pid === undefined ? "" : ` (pid ${seen.pid})`}`;
  switch (command) {
    case "start":
      return seen.pid === undefined
        ? `maqet: interrupted: the start of VM '${vm}' was not finished; QEMU may be running. See \`maqet status ${vm}\`; stop it with \`maqet stop ${vm}\`.`
        : `maqet: interrupted: the start of VM '${vm}' was not finished; ${running}. Stop it with \`maqet stop ${vm}\`.`;
    case "stop":
    case "rm":
    case "apply":
    case "edit": {
      const at = seen.operation === "vm.stop" && seen.step !== undefined ? ` at step ${seen.step}` : "";
      const what = command === "stop" ? "the stop" : `\`maqet ${command}\``;
      const after = command === "rm" ? ` Remove it with \`maqet rm ${vm} --force\`.` : "";
      return `maqet: interrupted: ${what} of VM '${vm}' was not finished${at}; ${running}, unless it was already going down. See \`maqet status ${vm}\`; stop it with \`maqet stop ${vm}\` (or --force).${after}`;
    }
    case "migrate":
      return `maqet: interrupted: cancelling the live migration of VM '${vm}' (before its commit point it stays on its source; after it, it runs on the destination). See \`maqet status ${vm}\` and \`maqet history ${vm}\`.`;
    default:
      return `maqet: interrupted: \`maqet ${command}\` on VM '${vm}' was not finished. See \`maqet status ${vm}\`.`;
  }
}
