import { mkdir, mkdtemp, realpath, rm, symlink } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ALLOWED_SYSTEM_SUBDIRECTORIES,
  assertDiskPathAllowed,
  SYSTEM_DIRECTORIES,
  systemDirectoryOf,
} from "../../src/adapters/path-safety.ts";
import { exitCodeOf } from "../../src/errors/error-codes.ts";

describe("systemDirectoryOf", () => {
  it("holds MAQET's list, with /dev/shm allowed", () => {
    expect(SYSTEM_DIRECTORIES).toEqual([
      "/etc",
      "/sys",
      "/proc",
      "/dev",
      "/boot",
      "/root",
      "/var",
      "/usr",
      "/bin",
      "/sbin",
      "/lib",
      "/lib64",
    ]);
    expect(ALLOWED_SYSTEM_SUBDIRECTORIES).toEqual(["/dev/shm"]);
  });

  it.each([
    ["/etc/x.qcow2", "/etc"],
    ["/etc", "/etc"],
    ["/var/lib/maqet/a.raw", "/var"],
    ["/usr/local/x", "/usr"],
    ["/lib64/x", "/lib64"],
    ["/lib/x", "/lib"],
    ["/dev/sda", "/dev"],
    ["/dev/shmx/a", "/dev"],
    ["/root/a.qcow2", "/root"],
    ["/proc/self/x", "/proc"],
  ])("%s -> %s", (path, rule) => {
    expect(systemDirectoryOf(path)).toBe(rule);
  });

  it.each([
    "/dev/shm/a.raw",
    "/dev/shm",
    "/home/u/vms/a.qcow2",
    "/tmp/a",
    "/etcetera/a",
    "/library/a",
    "/srv/var/a",
    "/a.qcow2",
  ])("%s is allowed", (path) => {
    expect(systemDirectoryOf(path)).toBeUndefined();
  });
});

describe("assertDiskPathAllowed", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await realpath(await mkdtemp(join(tmpdir(), "maqet-paths-")));
    await symlink("/etc", join(dir, "to-etc"));
    await symlink("/dev/shm", join(dir, "to-shm"));
    await mkdir(join(dir, "real"));
    await symlink(join(dir, "real"), join(dir, "to-real"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("allows ordinary paths, returning the real path (missing parents included)", async () => {
    expect(await assertDiskPathAllowed(join(dir, "a.qcow2"))).toBe(join(dir, "a.qcow2"));
    expect(await assertDiskPathAllowed(join(dir, "to-real", "new", "deeper", "a.qcow2"))).toBe(
      join(dir, "real", "new", "deeper", "a.qcow2"),
    );
    expect(await assertDiskPathAllowed(join(dir, "to-shm", "a.raw"))).toBe("/dev/shm/a.raw");
    expect(await assertDiskPathAllowed("/dev/shm/maqet-test/a.raw")).toBe("/dev/shm/maqet-test/a.raw");
  });

  it("refuses a system directory with PATH_REFUSED (exit 4), naming the path and the rule", async () => {
    const error = await assertDiskPathAllowed("/etc/evil.qcow2").catch((e) => e);
    expect(error).toMatchObject({ code: "PATH_REFUSED", details: { path: "/etc/evil.qcow2", rule: "/etc" } });
    expect(exitCodeOf(error.code)).toBe(4);
    expect(error.message).toBe(
      "Refusing to create disk /etc/evil.qcow2: /etc is a system directory where maqet never creates disks. Put the disk under your home or data directory (e.g. ~/.local/share/maqet/disks), or /dev/shm for scratch.",
    );
  });

  it("refuses a path that reaches a system directory through a symlink", async () => {
    const path = join(dir, "to-etc", "sub", "evil.qcow2");
    const error = await assertDiskPathAllowed(path).catch((e) => e);
    expect(error).toMatchObject({ code: "PATH_REFUSED", details: { rule: "/etc", realPath: "/etc/sub/evil.qcow2" } });
    expect(error.message).toContain(
      `Refusing to create disk ${path} (its real path is /etc/sub/evil.qcow2): /etc is a system directory`,
    );
  });

  it("refuses paths that only normalise into a system directory", async () => {
    await expect(assertDiskPathAllowed("/tmp/../var/lib/x.raw")).rejects.toMatchObject({
      code: "PATH_REFUSED",
      details: { rule: "/var" },
    });
  });

  it("refuses relative paths and NUL bytes", async () => {
    await expect(assertDiskPathAllowed("disks/a.qcow2")).rejects.toMatchObject({
      code: "PATH_REFUSED",
      details: { rule: "absolute" },
    });
    await expect(assertDiskPathAllowed("/tmp/a\0b")).rejects.toMatchObject({ code: "PATH_REFUSED" });
  });
});
