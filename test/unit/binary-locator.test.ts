import { chmod, mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBinaryLocator, installHint, sharedBinaryLocator } from "../../src/adapters/binary-locator.ts";

/** A fake filesystem: the set of executable paths, and a log of every probe. */
function fakeFs(executables: string[], delayMs = 0) {
  const probes: string[] = [];
  const isExecutable = async (path: string) => {
    probes.push(path);
    if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
    return executables.includes(path);
  };
  return { probes, isExecutable };
}

describe("createBinaryLocator: one lookup per program", () => {
  it("shares one lookup between many concurrent and later callers", async () => {
    const fs = fakeFs(["/usr/bin/qemu-img"], 5);
    const locator = createBinaryLocator({ env: { PATH: "/usr/local/bin:/usr/bin" }, isExecutable: fs.isExecutable });
    const concurrent = await Promise.all(Array.from({ length: 50 }, () => locator.locate("qemu-img")));
    expect(new Set(concurrent)).toEqual(new Set(["/usr/bin/qemu-img"]));
    for (let i = 0; i < 20; i++) expect(await locator.locate("qemu-img")).toBe("/usr/bin/qemu-img");
    expect(locator.lookups).toBe(1);
    expect(fs.probes).toEqual(["/usr/local/bin/qemu-img", "/usr/bin/qemu-img"]);
  });

  it("looks each program up separately", async () => {
    const fs = fakeFs(["/usr/bin/qemu-img", "/usr/bin/qemu-system-x86_64"]);
    const locator = createBinaryLocator({ env: { PATH: "/usr/bin" }, isExecutable: fs.isExecutable });
    await Promise.all([locator.locate("qemu-img"), locator.locate("qemu-system-x86_64"), locator.locate("qemu-img")]);
    expect(locator.lookups).toBe(2);
    expect(fs.probes).toHaveLength(2);
  });

  it("shares a failing lookup among concurrent callers, but looks again later", async () => {
    const fs = fakeFs([], 5);
    const locator = createBinaryLocator({ env: { PATH: "/usr/bin" }, isExecutable: fs.isExecutable });
    const results = await Promise.allSettled(Array.from({ length: 10 }, () => locator.locate("qemu-img")));
    expect(results.every((r) => r.status === "rejected")).toBe(true);
    expect(locator.lookups).toBe(1);
    await expect(locator.locate("qemu-img")).rejects.toMatchObject({ code: "BINARY_NOT_FOUND" });
    expect(locator.lookups).toBe(2);
  });

  it("returns the first executable match in PATH order and skips empty entries", async () => {
    const fs = fakeFs(["/b/qemu-img", "/c/qemu-img"]);
    const locator = createBinaryLocator({ env: { PATH: "::/a:/b:/c" }, isExecutable: fs.isExecutable });
    expect(await locator.locate("qemu-img")).toBe("/b/qemu-img");
    expect(fs.probes).toEqual(["/a/qemu-img", "/b/qemu-img"]);
  });
});

describe("createBinaryLocator: explicit paths", () => {
  it("checks an absolute path as is, without PATH", async () => {
    const fs = fakeFs(["/opt/qemu/bin/qemu-system-x86_64"]);
    const locator = createBinaryLocator({ env: { PATH: "/usr/bin" }, isExecutable: fs.isExecutable });
    expect(await locator.locate("/opt/qemu/bin/qemu-system-x86_64")).toBe("/opt/qemu/bin/qemu-system-x86_64");
    expect(fs.probes).toEqual(["/opt/qemu/bin/qemu-system-x86_64"]);
  });

  it("resolves a relative path against the current directory", async () => {
    const fs = fakeFs([join(process.cwd(), "bin/qemu")]);
    const locator = createBinaryLocator({ env: {}, isExecutable: fs.isExecutable });
    expect(await locator.locate("./bin/qemu")).toBe(join(process.cwd(), "bin/qemu"));
  });

  it("names a missing path and how to fix it", async () => {
    const locator = createBinaryLocator({ env: {}, isExecutable: fakeFs([]).isExecutable });
    await expect(locator.locate("/opt/none/qemu-system-x86_64")).rejects.toMatchObject({
      code: "BINARY_NOT_FOUND",
      message:
        "QEMU binary not found: /opt/none/qemu-system-x86_64 is missing or not executable. Install QEMU, fix the path (binary: in the VM config), or chmod +x it.",
    });
  });

  it("prefers overrides, then MAQET_QEMU_IMG / MAQET_QEMU_SYSTEM, over PATH", async () => {
    const fs = fakeFs(["/o/img", "/e/img", "/e/system", "/usr/bin/qemu-img", "/usr/bin/qemu-system-aarch64"]);
    const env = { PATH: "/usr/bin", MAQET_QEMU_IMG: "/e/img", MAQET_QEMU_SYSTEM: "/e/system" };
    const withOverride = createBinaryLocator({
      env,
      overrides: { "qemu-img": "/o/img" },
      isExecutable: fs.isExecutable,
    });
    expect(await withOverride.locate("qemu-img")).toBe("/o/img");
    const fromEnv = createBinaryLocator({ env, isExecutable: fs.isExecutable });
    expect(await fromEnv.locate("qemu-img")).toBe("/e/img");
    expect(await fromEnv.locate("qemu-system-aarch64")).toBe("/e/system");
    // a path is never redirected by MAQET_QEMU_SYSTEM
    expect(await fromEnv.locate("/usr/bin/qemu-system-aarch64")).toBe("/usr/bin/qemu-system-aarch64");
  });

  it("names the variable when an environment override is wrong", async () => {
    const locator = createBinaryLocator({
      env: { MAQET_QEMU_IMG: "/nope/qemu-img" },
      isExecutable: fakeFs([]).isExecutable,
    });
    await expect(locator.locate("qemu-img")).rejects.toThrow(
      "qemu-img not found: /nope/qemu-img (from MAQET_QEMU_IMG) is missing or not executable. Fix MAQET_QEMU_IMG, or unset it to search PATH.",
    );
  });

  it("refuses an empty program name", async () => {
    const locator = createBinaryLocator({ env: {} });
    await expect(locator.locate("")).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});

describe("not found on PATH: the install command", () => {
  it("for qemu-img", async () => {
    const locator = createBinaryLocator({ env: { PATH: "/usr/bin:/bin" }, isExecutable: fakeFs([]).isExecutable });
    await expect(locator.locate("qemu-img")).rejects.toMatchObject({
      code: "BINARY_NOT_FOUND",
      message:
        "qemu-img not found on PATH (/usr/bin:/bin). Install it: apt-get install -y --no-install-recommends qemu-utils (Debian/Ubuntu) or dnf install qemu-img (Fedora).",
    });
  });

  it("for qemu-system-x86_64, with an empty PATH", async () => {
    const locator = createBinaryLocator({ env: { PATH: "" } });
    await expect(locator.locate("qemu-system-x86_64")).rejects.toThrow(
      "qemu-system-x86_64 not found on PATH (empty). Install it: apt-get install -y --no-install-recommends qemu-system-x86 (Debian/Ubuntu) or dnf install qemu-system-x86 (Fedora).",
    );
  });

  it.each([
    ["qemu-system-i386", "qemu-system-x86", "qemu-system-x86"],
    ["qemu-system-aarch64", "qemu-system-arm", "qemu-system-aarch64"],
    ["qemu-system-arm", "qemu-system-arm", "qemu-system-arm"],
    ["qemu-system-riscv64", "qemu-system", "qemu-system-riscv64"],
  ])("%s -> apt %s, dnf %s", (program, debian, fedora) => {
    expect(installHint(program)).toBe(
      `Install it: apt-get install -y --no-install-recommends ${debian} (Debian/Ubuntu) or dnf install ${fedora} (Fedora).`,
    );
  });

  it("for anything else", () => {
    expect(installHint("ovmf")).toBe("Install it, or give its full path.");
  });
});

describe("the real filesystem probe", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "maqet-locator-"));
    await mkdir(join(dir, "a", "qemu-img"), { recursive: true }); // a directory, not a program
    await mkdir(join(dir, "b"));
    await writeFile(join(dir, "b", "qemu-img"), "#!/bin/sh\n"); // not executable
    await mkdir(join(dir, "c"));
    await writeFile(join(dir, "c", "qemu-img"), "#!/bin/sh\n");
    await chmod(join(dir, "c", "qemu-img"), 0o755);
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("skips directories and non-executable files", async () => {
    const locator = createBinaryLocator({ env: { PATH: ["a", "b", "c"].map((d) => join(dir, d)).join(":") } });
    expect(await locator.locate("qemu-img")).toBe(join(dir, "c", "qemu-img"));
  });

  it("shares one process-wide instance", () => {
    expect(sharedBinaryLocator()).toBe(sharedBinaryLocator());
  });
});
