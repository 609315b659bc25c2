/**
 * The CLI side of snapshots, disks and progress: how `snapshot <action> <vm> [drive] [name]`
 * reads its words, what `disk create` passes on, and how progress is drawn (bar on a TTY,
 * lines otherwise).
 */
import { Subject } from "rxjs";
import { describe, expect, it } from "vitest";
import { findCommand } from "../../src/api/commands.ts";
import type { Maqet } from "../../src/api/maqet.ts";
import type { OperationProgress } from "../../src/api/progress-hub.ts";
import { parseArgs } from "../../src/cli/parse-args.ts";
import { renderProgress } from "../../src/cli/progress-renderer.ts";
import { renderResult } from "../../src/cli/render.ts";

/** A Maqet whose methods record their arguments. */
function recordingMaqet() {
  const calls: unknown[][] = [];
  const record =
    (name: string) =>
    async (...args: unknown[]) => {
      calls.push([name, ...args]);
      return {};
    };
  const maqet = new Proxy({}, { get: (_t, name) => record(String(name)) }) as unknown as Maqet;
  return { maqet, calls };
}

async function invoke(argv: string[]) {
  const parsed = parseArgs(argv);
  const { maqet, calls } = recordingMaqet();
  await parsed.command!.invoke(maqet, parsed.input);
  return calls[0];
}

describe("snapshot commands", () => {
  it("one word after the VM is the name for create/load/delete, the drive for list", async () => {
    expect(await invoke(["snapshot", "create", "web", "s1"])).toEqual([
      "createSnapshot",
      "web",
      { tag: "s1", overwrite: false, timeoutMs: undefined },
    ]);
    expect(await invoke(["snapshot", "create", "web", "hdd", "s1", "--overwrite"])).toEqual([
      "createSnapshot",
      "web",
      { drive: "hdd", tag: "s1", overwrite: true, timeoutMs: undefined },
    ]);
    expect(await invoke(["snapshot", "load", "web", "s1", "--timeout", "5"])).toEqual([
      "loadSnapshot",
      "web",
      { tag: "s1", timeoutMs: 5000 },
    ]);
    expect(await invoke(["snapshot", "restore", "web", "hdd", "s1"])).toEqual([
      "loadSnapshot",
      "web",
      { drive: "hdd", tag: "s1", timeoutMs: undefined },
    ]);
    expect(await invoke(["snapshot", "rm", "web", "s1"])).toEqual([
      "deleteSnapshot",
      "web",
      { tag: "s1", timeoutMs: undefined },
    ]);
    expect(await invoke(["snapshot", "list", "web"])).toEqual(["listSnapshots", "web", {}]);
    expect(await invoke(["snapshot", "ls", "web", "hdd"])).toEqual(["listSnapshots", "web", { drive: "hdd" }]);
  });

  it("create without a name says so (exit 3)", async () => {
    await expect(invoke(["snapshot", "create", "web"])).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message:
        "Invalid arguments: missing <name> (the snapshot name). Usage: maqet snapshot create <vm> [drive] <name>.",
    });
    expect(() => parseArgs(["snapshot", "create", "web", "a", "b", "c"])).toThrow(/unexpected argument 'c'/);
  });
});

describe("disk commands", () => {
  it("create passes format (qcow2 by default), size, backing and -o options (,, is a comma)", async () => {
    expect(
      await invoke(["disk", "create", "a.qcow2", "--size", "1G", "--options", "cluster_size=64K,compat=1.1,x=a,,b"]),
    ).toEqual([
      "createDisk",
      "a.qcow2",
      { format: "qcow2", size: "1G", options: { cluster_size: "64K", compat: "1.1", x: "a,b" } },
    ]);
    expect(await invoke(["disk", "create", "o.qcow2", "--backing", "base.raw", "--backing-format", "raw"])).toEqual([
      "createDisk",
      "o.qcow2",
      { format: "qcow2", backingFile: "base.raw", backingFormat: "raw" },
    ]);
    await expect(invoke(["disk", "create", "a.vmdk", "--format", "vmdk"])).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
    await expect(invoke(["disk", "create", "a", "--options", "nonsense"])).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
    });
  });

  it("resize, convert, check, info", async () => {
    expect(await invoke(["disk", "resize", "a.qcow2", "+1G", "--shrink"])).toEqual([
      "resizeDisk",
      "a.qcow2",
      "+1G",
      { shrink: true },
    ]);
    expect(await invoke(["disk", "convert", "a.qcow2", "a.raw", "--format", "raw", "--compress"])).toEqual([
      "convertDisk",
      "a.qcow2",
      "a.raw",
      { format: "raw", compress: true, timeoutMs: undefined },
    ]);
    expect(await invoke(["disk", "check", "a.qcow2"])).toEqual(["checkDisk", "a.qcow2", { format: undefined }]);
    expect(await invoke(["disk", "info", "a.qcow2"])).toEqual(["diskInfo", "a.qcow2"]);
    expect(await invoke(["doctor", "--skip-kvm"])).toEqual(["doctor", { skipKvm: true }]);
  });

  it("renders results as text", () => {
    expect(
      renderResult("snapshot create", {
        vm: "web",
        operation: "create",
        tag: "s1",
        drives: ["hdd"],
        live: true,
        method: "qmp-job",
        replaced: true,
        durationMs: 18,
      }),
    ).toBe("Snapshot 's1' taken on drive hdd of VM 'web' (replaced the old one) (live, QMP job) in 18 ms.");
    expect(
      renderResult("snapshot list", {
        vm: "web",
        running: false,
        source: "catalogue",
        drives: [{ drive: "hdd", file: "/f", snapshots: [] }],
      }),
    ).toBe("VM 'web' has no snapshots.");
    expect(
      renderResult("disk check", {
        file: "/a.raw",
        status: "unsupported",
        checkErrors: 0,
        corruptions: 0,
        leaks: 0,
        raw: {},
      }),
    ).toContain("raw images cannot be checked");
    expect(findCommand("snapshot apply")?.name).toBe("snapshot load");
  });
});

describe("progress on the CLI", () => {
  const feed = (tty: boolean) => {
    const out: string[] = [];
    const progress$ = new Subject<OperationProgress>();
    const sub = renderProgress(progress$, { isTTY: tty, columns: 60, write: (t) => out.push(t) });
    for (const percent of [0, 3, 9, 10, 25, 50, 99, 100])
      progress$.next({ operation: "disk.convert", subject: "/v/b.raw", percent });
    progress$.next({ operation: "disk.convert", subject: "/v/b.raw", percent: 100, done: true, ok: true });
    sub.unsubscribe();
    return out;
  };

  it("a bar redrawn in place on a terminal, ending with a newline", () => {
    const out = feed(true);
    const ESC = "\u001b";
    expect(out[0]?.startsWith(`\r${ESC}[2K`)).toBe(true);
    expect(out[0]?.slice(5)).toMatch(/^converting \/v\/b\.raw \[-+\] {3}0%$/);
    expect(out.at(-2)?.slice(5)).toMatch(/^converting \/v\/b\.raw \[#+\] 100%$/);
    expect(out.at(-1)).toBe("\n");
  });

  it("plain lines every 10 % otherwise", () => {
    expect(feed(false)).toEqual([
      "converting /v/b.raw: 0%\n",
      "converting /v/b.raw: 10%\n",
      "converting /v/b.raw: 25%\n",
      "converting /v/b.raw: 50%\n",
      "converting /v/b.raw: 99%\n",
      "converting /v/b.raw: 100%\n",
    ]);
  });
});
