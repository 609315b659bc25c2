/**
 * Storage config beyond plain disks: backing files, qemu-img create options, VirtFS shares in
 * both of MAQET's forms; the -virtfs argv; the share path rules; disk space arithmetic.
 */
import { mkdir, mkdtemp, rm, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatBytes, requiredBytes, sizeInBytes } from "../../src/adapters/disk-provisioner.ts";
import { assertSharePathAllowed } from "../../src/adapters/path-safety.ts";
import { buildQemuArgv, virtfsArgs } from "../../src/adapters/qemu-argv.ts";
import { parseVmConfig } from "../../src/config/parse-vm-config.ts";
import { errorOf } from "../support/failure.ts";

const parse = (text: string) => parseVmConfig(text, { source: "vm.yaml", baseDir: "/srv/vms" });

describe("disk entries: backing files and create options", () => {
  it("resolves backing_file against the image's directory; size becomes optional; format defaults to qcow2", () => {
    const config = parse(`
storage:
  - {name: os, type: qcow2, file: disks/os.qcow2, backing_file: ../images/base.qcow2}
  - {name: data, type: qcow2, file: /data/d.qcow2, backing_file: base.raw, backing_format: raw, size: 20G}
  - {name: fast, type: qcow2, size: 1G, options: {cluster_size: 2M, lazy_refcounts: true, preallocation: metadata}}
`);
    expect(config.storage).toEqual([
      {
        name: "os",
        type: "qcow2",
        file: "/srv/vms/disks/os.qcow2",
        interface: "virtio",
        backingFile: "/srv/vms/images/base.qcow2",
        backingFormat: "qcow2",
      },
      {
        name: "data",
        type: "qcow2",
        file: "/data/d.qcow2",
        size: "20G",
        interface: "virtio",
        backingFile: "/data/base.raw",
        backingFormat: "raw",
      },
      {
        name: "fast",
        type: "qcow2",
        file: "/srv/vms/fast.qcow2",
        size: "1G",
        interface: "virtio",
        options: { cluster_size: "2M", lazy_refcounts: true, preallocation: "metadata" },
      },
    ]);
    expect(config.shares).toBeUndefined();
  });

  it.each([
    ["storage: [{type: raw, backing_file: b.raw}]", "storage[0].type", "qcow2 when backing_file is set"],
    ["storage: [{type: qcow2, backing_format: raw}]", "storage[0].backing_format", "used together with backing_file"],
    ["storage: [{type: qcow2, backing_file: b, backing_format: vmdk}]", "storage[0].backing_format", "qcow2 or raw"],
    ["storage: [{type: qcow2, file: a.qcow2, backing_file: a.qcow2}]", "storage[0].backing_file", "a different file"],
    ["storage: [{type: qcow2, options: [a]}]", "storage[0].options", "qemu-img create options"],
    ["storage: [{type: qcow2, options: {Bad-Key: 1}}]", "storage[0].options.Bad-Key", "a lower-case option name"],
    ["storage: [{type: qcow2, options: {a: {b: 1}}}]", "storage[0].options.a", "a string, number or true/false"],
  ])("%s -> %s", (text, keyPath, message) => {
    const error = errorOf(() => parse(text));
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.details.keyPath).toBe(keyPath);
    expect(error.message).toContain(message);
  });
});

describe("VirtFS entries", () => {
  it("accepts MAQET's options: form and the documented top-level form alike", () => {
    const nested = parse(`
storage:
  - name: data
    type: virtfs
    path: ./share
    options: {mount_tag: host_data, security_model: mapped-xattr, readonly: true, id: fs0, multidevs: remap}
`);
    const top = parse(`
storage:
  - {name: data, type: virtfs, path: ./share, mount_tag: host_data, security_model: mapped-xattr, readonly: true, options: {id: fs0, multidevs: remap}}
`);
    const expected = {
      name: "data",
      path: "/srv/vms/share",
      mountTag: "host_data",
      id: "fs0",
      securityModel: "mapped-xattr",
      readonly: true,
      extra: { multidevs: "remap" },
    };
    expect(nested.shares).toEqual([expected]);
    expect(top.shares).toEqual([expected]);
    expect(nested.storage).toEqual([]);
  });

  it("defaults: name share<i>, mount tag and id from the name, passthrough, read-write", () => {
    const config = parse("storage:\n  - {type: qcow2, size: 1G}\n  - {type: virtfs, path: /srv/share}\n");
    expect(config.storage.map((d) => d.name)).toEqual(["hdd0"]);
    expect(config.shares).toEqual([
      {
        name: "share1",
        path: "/srv/share",
        mountTag: "share1",
        id: "share1",
        securityModel: "passthrough",
        readonly: false,
      },
    ]);
  });

  it.each([
    ["storage: [{type: virtfs}]", "storage[0].path", "the host directory to share"],
    ["storage: [{type: virtfs, path: /s, size: 1G}]", "storage[0].size", "Valid keys for a virtfs storage entry"],
    ["storage: [{type: virtfs, path: /s, security_model: open}]", "storage[0].security_model", "one of passthrough"],
    ["storage: [{type: virtfs, path: /s, readonly: maybe}]", "storage[0].readonly", "true or false"],
    ["storage: [{type: virtfs, path: /s, mount_tag: 'a b'}]", "storage[0].mount_tag", "1-31 letters"],
    [
      "storage: [{type: virtfs, path: /s, mount_tag: a, options: {mount_tag: b}}]",
      "storage[0].options.mount_tag",
      "the same as storage[0].mount_tag",
    ],
    [
      "storage: [{type: virtfs, path: /s, options: {path: /etc}}]",
      "storage[0].options.path",
      "left out (maqet sets it)",
    ],
    [
      "storage: [{type: virtfs, path: /a, name: a}, {type: virtfs, path: /b, mount_tag: a}]",
      "storage[1].mount_tag",
      "unique",
    ],
  ])("%s -> %s", (text, keyPath, message) => {
    const error = errorOf(() => parse(text));
    expect(error.code).toBe("CONFIG_INVALID");
    expect(error.details.keyPath).toBe(keyPath);
    expect(error.message).toContain(message);
  });

  it.each(["/", "/.", "../../../..", "//"])("refuses sharing / (%s) with PATH_REFUSED (exit 4)", (path) => {
    const error = errorOf(() => parse(`storage: [{name: root, type: virtfs, path: '${path}'}]`));
    expect(error.code).toBe("PATH_REFUSED");
    expect(error.exitCode).toBe(4);
    expect(error.details).toMatchObject({ rule: "/", path: "/" });
    expect(error.message).toMatch(/^Refusing VirtFS share 'root' of \/ \(storage\[0\]\.path in vm\.yaml\)/);
  });
});

describe("-virtfs argv", () => {
  const vmId = "0b5c3f8e-4a1d-4c7e-9f00-3c2d1e0f9a8b";
  const runtime = { vmId, name: "w", qmpSocket: "/run/q.sock", pidFile: "/run/q.pid" };

  it("builds local,path,mount_tag,security_model,id[,readonly][,extras] with commas doubled", () => {
    const config = parse(`
storage:
  - {name: hdd, type: qcow2, size: 1G}
  - {name: data, type: virtfs, path: '/srv/a,b', readonly: true, options: {multidevs: remap}}
`);
    const argv = buildQemuArgv(config, runtime, { kvmUsable: false });
    const i = argv.indexOf("-virtfs");
    expect(argv[i + 1]).toBe(
      "local,path=/srv/a,,b,mount_tag=data,security_model=passthrough,id=data,readonly=on,multidevs=remap",
    );
    expect(i).toBeGreaterThan(argv.indexOf("-drive"));
  });

  it("refuses / even when handed a config that skipped the parser", () => {
    const share = { name: "r", path: "/", mountTag: "r", id: "r", securityModel: "none" as const, readonly: true };
    expect(() => virtfsArgs([share])).toThrow(expect.objectContaining({ code: "PATH_REFUSED" }));
  });
});

describe("assertSharePathAllowed (real paths)", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "maqet-share-"));
    await mkdir(join(dir, "ok"));
    await writeFile(join(dir, "file"), "");
    await symlink("/", join(dir, "root-link"));
    await symlink("/etc", join(dir, "etc-link"));
  });
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("allows a directory and returns its real path", async () => {
    expect(await assertSharePathAllowed(join(dir, "ok/"))).toBe(join(dir, "ok"));
  });

  it.each([
    ["/", "/"],
    ["/etc", "/etc"],
    ["/usr/share", "/usr"],
  ])("refuses %s (rule %s), exit 4", async (path, rule) => {
    await expect(assertSharePathAllowed(path)).rejects.toMatchObject({
      code: "PATH_REFUSED",
      exitCode: 4,
      details: { rule },
    });
  });

  it("refuses a symlink to / or into /etc, naming the real path", async () => {
    const error = await assertSharePathAllowed(join(dir, "root-link")).catch((e) => e);
    expect(error).toMatchObject({ code: "PATH_REFUSED", details: { rule: "/", realPath: "/" } });
    expect(error.message).toContain("(its real path is /)");
    await expect(assertSharePathAllowed(join(dir, "etc-link"))).rejects.toMatchObject({ details: { rule: "/etc" } });
  });

  it("a missing directory or a file is PATH_NOT_FOUND (exit 3)", async () => {
    await expect(assertSharePathAllowed(join(dir, "nope"))).rejects.toMatchObject({
      code: "PATH_NOT_FOUND",
      exitCode: 3,
    });
    await expect(assertSharePathAllowed(join(dir, "file"))).rejects.toMatchObject({
      code: "PATH_NOT_FOUND",
      details: { rule: "directory" },
    });
  });
});

describe("disk space arithmetic", () => {
  it("qcow2 needs size × 1.1, raw its size, an overlay nothing", () => {
    expect(sizeInBytes("512")).toBe(512);
    expect(sizeInBytes("64k")).toBe(65536);
    expect(sizeInBytes("10G")).toBe(10 * 1024 ** 3);
    expect(requiredBytes({ format: "qcow2", size: "10G" })).toBe(Math.ceil(10 * 1024 ** 3 * 1.1));
    expect(requiredBytes({ format: "raw", size: "1G" })).toBe(1024 ** 3);
    expect(requiredBytes({ format: "qcow2", size: "10G", backingFile: "/b" })).toBe(0);
    expect(formatBytes(1610612736)).toBe("1.5 GiB");
    expect(() => sizeInBytes("1.5G")).toThrow(expect.objectContaining({ code: "INVALID_ARGUMENT" }));
  });
});
