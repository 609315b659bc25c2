/**
 * The words and drawing of long waits, Ctrl-C and colour, with fakes (the terminal itself is
 * tested with tmux in test/e2e/cli-terminal.qemu.test.ts).
 */
import { EventEmitter } from "node:events";
import { Subject } from "rxjs";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { OperationProgress } from "../../src/api/progress-hub.ts";
import { stepMessage } from "../../src/api/step-message.ts";
import { colorEnabled, NO_PAINT, paintFor } from "../../src/cli/color.ts";
import { interruptNote, watchInterrupt } from "../../src/cli/interrupt.ts";
import { renderProgress } from "../../src/cli/progress-renderer.ts";

describe("step messages", () => {
  it("say the step and how long it waits", () => {
    expect(stepMessage("web", { operation: "vm.stop", step: "powerdown", waitMs: 30_000 })).toBe(
      "stopping VM 'web': ACPI powerdown sent, waiting up to 30s for the guest to power off",
    );
    expect(stepMessage("web", { operation: "vm.stop", step: "sigterm", waitMs: 3000, pid: 42 })).toBe(
      "stopping VM 'web': SIGTERM sent to QEMU (pid 42), waiting up to 3s",
    );
    expect(
      stepMessage("web", { operation: "vm.start", step: "wait", waitMs: 57_700, pid: 7, condition: "serial:login:" }),
    ).toBe("starting VM 'web': QEMU is up (pid 7), waiting up to 58s for serial output matching /login:/");
    expect(stepMessage("web", { operation: "vm.start", step: "wait", waitMs: 400, condition: "file:/tmp/ready" })).toBe(
      "starting VM 'web': QEMU is up, waiting up to 1s for the file /tmp/ready to appear",
    );
  });
});

describe("message progress", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());
  const step = (message: string, extra: Partial<OperationProgress> = {}): OperationProgress => ({
    operation: "vm.stop",
    subject: "web",
    percent: 0,
    message,
    ...extra,
  });
  const done: OperationProgress = { operation: "vm.stop", subject: "web", percent: 100, done: true, ok: true };

  it("a wait shorter than the quiet period prints nothing", () => {
    const out: string[] = [];
    const hub = new Subject<OperationProgress>();
    renderProgress(hub, { isTTY: false, write: (t) => out.push(t) });
    hub.next(step("powerdown"));
    vi.advanceTimersByTime(900);
    hub.next(done);
    vi.advanceTimersByTime(5000);
    expect(out).toEqual([]);
  });

  it("plain lines, once each, after the quiet period, when not a terminal", () => {
    const out: string[] = [];
    const hub = new Subject<OperationProgress>();
    renderProgress(hub, { isTTY: false, write: (t) => out.push(t) });
    hub.next(step("powerdown"));
    vi.advanceTimersByTime(1000);
    vi.advanceTimersByTime(5000);
    hub.next(step("quit"));
    hub.next(done);
    expect(out).toEqual(["maqet: powerdown\n", "maqet: quit\n"]);
  });

  it("one live line on a terminal, with the seconds so far, erased at the end", () => {
    const out: string[] = [];
    const hub = new Subject<OperationProgress>();
    renderProgress(hub, { isTTY: true, write: (t) => out.push(t), paint: NO_PAINT });
    hub.next(step("powerdown"));
    vi.advanceTimersByTime(1000);
    expect(out.at(-1)).toBe("\r\x1b[2Kmaqet: powerdown (1s)");
    vi.advanceTimersByTime(2000);
    expect(out.at(-1)).toBe("\r\x1b[2Kmaqet: powerdown (3s)");
    hub.next(step("quit"));
    expect(out.at(-1)).toBe("\r\x1b[2Kmaqet: quit (0s)");
    hub.next(done);
    expect(out.at(-1)).toBe("\r\x1b[2K");
    const count = out.length;
    vi.advanceTimersByTime(5000);
    expect(out.length).toBe(count); // the ticker stopped
  });
});

describe("Ctrl-C", () => {
  it("says what is left running, closes the store, exits 130; a second Ctrl-C exits at once", async () => {
    const signals = new EventEmitter();
    const hub = new Subject<OperationProgress>();
    const said: string[] = [];
    const exits: number[] = [];
    let closed = false;
    const release = watchInterrupt({
      command: "stop",
      vm: "web",
      progress$: hub,
      stderr: (t) => said.push(t),
      close: async () => {
        closed = true;
      },
      exit: (code) => exits.push(code),
      signals: signals as never,
    });
    hub.next({ operation: "vm.stop", subject: "web", percent: 0, message: "m", step: "quit", pid: 4242 });
    signals.emit("SIGINT");
    expect(said[0]).toContain(
      "the stop of VM 'web' was not finished at step quit; VM 'web' is still running (pid 4242)",
    );
    await vi.waitFor(() => expect(exits).toEqual([130]));
    expect(closed).toBe(true);
    signals.emit("SIGINT");
    expect(exits).toEqual([130, 130]);
    release();
    expect(signals.listenerCount("SIGINT")).toBe(0);
  });

  it("a start interrupted before QEMU's pid is known says it may be running", () => {
    expect(interruptNote("start", "web", {})).toBe(
      "maqet: interrupted: the start of VM 'web' was not finished; QEMU may be running. See `maqet status web`; stop it with `maqet stop web`.",
    );
  });
});

describe("colour", () => {
  it("on a terminal only; NO_COLOR off, FORCE_COLOR on, --color wins over both", () => {
    expect(colorEnabled({ isTTY: true }, {})).toBe(true);
    expect(colorEnabled({ isTTY: false }, {})).toBe(false);
    expect(colorEnabled({ isTTY: true }, { TERM: "dumb" })).toBe(false);
    expect(colorEnabled({ isTTY: true }, { NO_COLOR: "1" })).toBe(false);
    expect(colorEnabled({ isTTY: true }, { NO_COLOR: "" })).toBe(true);
    expect(colorEnabled({ isTTY: false }, { FORCE_COLOR: "1" })).toBe(true);
    expect(colorEnabled({ isTTY: false }, { FORCE_COLOR: "0" })).toBe(false);
    expect(colorEnabled({ isTTY: true }, { FORCE_COLOR: "1" }, "never")).toBe(false);
    expect(colorEnabled({ isTTY: false }, { NO_COLOR: "1" }, "always")).toBe(true);
    expect(paintFor(true).red("x")).toBe("\x1b[31mx\x1b[39m");
    expect(paintFor(false).red("x")).toBe("x");
  });
});
