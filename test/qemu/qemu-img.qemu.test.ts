/**
 * The disk provisioner against the real qemu-img: formats, sizes, modes, failure clean-up and a
 * missing binary.
 */
import { chmod, mkdtemp, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBinaryLocator } from "../../src/adapters/binary-locator.ts";
import { createDiskProvisioner } from "../../src/adapters/disk-provisioner.ts";
import { qemuImgInfo } from "../../src/adapters/qemu-img.ts";
import type { DiskDevice } from "../../src/config/vm-config.ts";

const MiB = 1024 * 1024;
const locator = createBinaryLocator({ env: process.env });
const disks = createDiskProvisioner({ locator });
let dir: string;

const disk = (over: Partial<DiskDevice>): DiskDevice => ({
  name: "hdd0",
  type: "qcow2",
  file: join(dir, "hdd0.qcow2"),
  size: "64M",
  interface: "virtio",
  ...over,
});

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "maqet-qemu-img-"));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe("ensure creates missing images", () => {
  it.each([
    ["qcow2", "64M", 64 * MiB],
    ["raw", "1G", 1024 * MiB],
  ] as const)("%s of %s, mode 0600, parent made 0700", async (type, size, bytes) => {
    const file = join(dir, `new-${type}`, `disk.${type}`);
    const started = Date.now();
    const result = await disks.ensure(disk({ type, size, file }));
    const elapsed = Date.now() - started;
    expect(result.created).toBe(true);
    // The time this call took, in milliseconds: never more than the caller saw pass.
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    expect(result.durationMs).toBeLessThanOrEqual(elapsed + 1);
    const info = await qemuImgInfo(file, { locator });
    expect(info.format).toBe(type);
    expect(info.virtualSize).toBe(bytes);
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await stat(join(dir, `new-${type}`))).mode & 0o777).toBe(0o700);
  });

  it("leaves an existing file alone, even without a size", async () => {
    const file = join(dir, "existing.raw");
    await writeFile(file, "not an image");
    const result = await disks.ensure(disk({ type: "raw", file, size: undefined }));
    expect(result.created).toBe(false);
    expect((await stat(file)).size).toBe(12);
  });

  it("handles file names with commas and leading dashes", async () => {
    const file = join(dir, "-a,b.qcow2");
    expect((await disks.ensure(disk({ file, size: "1M" }))).created).toBe(true);
    expect((await qemuImgInfo(file, { locator })).format).toBe("qcow2");
  });
});

describe("missing", () => {
  it("lists the disks whose files do not exist yet, in order", async () => {
    const present = join(dir, "present.raw");
    await writeFile(present, "");
    const a = disk({ name: "a", file: join(dir, "absent-a.qcow2") });
    const b = disk({ name: "b", file: present });
    const c = disk({ name: "c", file: join(dir, "absent-c.qcow2") });
    expect(await disks.missing([a, b, c])).toEqual([a, c]);
    expect(await disks.missing([])).toEqual([]);
  });
});

describe("ensure refuses and fails cleanly", () => {
  it("needs a size to create, naming the disk", async () => {
    const file = join(dir, "nosize.qcow2");
    await expect(disks.ensure(disk({ name: "data", file, size: undefined }))).rejects.toMatchObject({
      code: "CONFIG_INVALID",
      details: { keyPath: "storage[name=data].size" },
      message: `Invalid config: disk 'data' has no 'size' and its file ${file} does not exist yet. Add size: (e.g. size: 10G) to that storage entry, or create the file.`,
    });
  });

  it("refuses system directories before running anything", async () => {
    await expect(disks.ensure(disk({ file: "/etc/maqet-test/evil.qcow2" }))).rejects.toMatchObject({
      code: "PATH_REFUSED",
    });
    await symlink("/etc", join(dir, "etc-link"));
    await expect(disks.ensure(disk({ file: join(dir, "etc-link", "maqet-evil.qcow2") }))).rejects.toMatchObject({
      code: "PATH_REFUSED",
      details: { rule: "/etc" },
    });
  });

  it("removes the partial file and quotes qemu-img's stderr", async () => {
    const file = join(dir, "fail", "bad.qcow2");
    const error = await disks
      .ensure(disk({ name: "bad", file, size: "1M", options: { cluster_size: 3 } }))
      .catch((e) => e);
    expect(error.code).toBe("QEMU_IMG_FAILED");
    expect(error.message).toMatch(
      /^qemu-img create failed for .*bad\.qcow2 \(qcow2, 1M\): qemu-img: .*bad\.qcow2: Cluster size must be a power of two between 512 and 2048k\./,
    );
    expect(error.details.stderr).toContain("Cluster size must be a power of two");
    expect(await readdir(join(dir, "fail"))).toEqual([]);
  });

  it("checks free space first (qcow2 × 1.1), creating nothing when there is too little", async () => {
    const file = join(dir, "full", "huge.qcow2");
    const error = await disks.ensure(disk({ name: "huge", file, size: "99999999999T" })).catch((e) => e);
    expect(error).toMatchObject({ code: "INSUFFICIENT_SPACE", exitCode: 1 });
    expect(error.message).toMatch(
      /^Insufficient disk space for disk 'huge' \(.*huge\.qcow2, qcow2 99999999999T\): need .* \(size × 1\.1, room to grow\), have .* free in /,
    );
    expect(await readdir(join(dir, "full"))).toEqual([]);
  });

  it("honours an already-aborted signal without creating anything", async () => {
    const file = join(dir, "aborted.qcow2");
    const controller = new AbortController();
    controller.abort(new Error("stop now"));
    await expect(disks.ensure(disk({ file }), controller.signal)).rejects.toThrow("stop now");
    await expect(stat(file)).rejects.toMatchObject({ code: "ENOENT" });
  });

  describe("with a qemu-img that hangs", () => {
    const hanging = () => {
      const fake = join(dir, "fake-qemu-img");
      return createBinaryLocator({ env: {}, overrides: { "qemu-img": fake } });
    };
    beforeAll(async () => {
      const fake = join(dir, "fake-qemu-img");
      await writeFile(
        fake,
        '#!/bin/sh\n[ "$1" = --version ] && { echo "qemu-img version 7.2.22"; exit 0; }\nexec sleep 30\n',
      );
      await chmod(fake, 0o755);
    });

    it("an abort mid-run kills it and removes the claimed file", async () => {
      const file = join(dir, "abort-mid.qcow2");
      const controller = new AbortController();
      setTimeout(() => controller.abort(new Error("user pressed ctrl-c")), 200);
      const t0 = Date.now();
      await expect(
        createDiskProvisioner({ locator: hanging() }).ensure(disk({ file }), controller.signal),
      ).rejects.toThrow("user pressed ctrl-c");
      expect(Date.now() - t0).toBeLessThan(5000);
      await expect(stat(file)).rejects.toMatchObject({ code: "ENOENT" });
    });

    it("the timeout fails with QEMU_IMG_TIMEOUT (exit 2) and removes the claimed file", async () => {
      const file = join(dir, "timeout.qcow2");
      const error = await createDiskProvisioner({ locator: hanging(), timeoutMs: 200 })
        .ensure(disk({ name: "slow", file }))
        .catch((e) => e);
      expect(error).toMatchObject({ code: "QEMU_IMG_TIMEOUT", exitCode: 2, details: { timeoutMs: 200 } });
      expect(error.message).toMatch(
        /^qemu-img create timed out after 200 ms for .*timeout\.qcow2 \(qcow2, 64M\); qemu-img was killed/,
      );
      await expect(stat(file)).rejects.toMatchObject({ code: "ENOENT" });
    });
  });

  it("reports a missing qemu-img with the install command (empty PATH)", async () => {
    const noQemu = createDiskProvisioner({ locator: createBinaryLocator({ env: { PATH: "" } }) });
    const file = join(dir, "never.qcow2");
    await expect(noQemu.ensure(disk({ file }))).rejects.toMatchObject({
      code: "BINARY_NOT_FOUND",
      message:
        "qemu-img not found on PATH (empty). Install it: apt-get install -y --no-install-recommends qemu-utils (Debian/Ubuntu) or dnf install qemu-img (Fedora).",
    });
    await expect(stat(file)).rejects.toMatchObject({ code: "ENOENT" });
  });
});

describe("qemuImgInfo", () => {
  it("quotes qemu-img when the file is not an image it can open", async () => {
    await expect(qemuImgInfo(join(dir, "missing.qcow2"), { locator })).rejects.toMatchObject({
      code: "QEMU_IMG_FAILED",
    });
  });
});
