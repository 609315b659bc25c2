/**
 * 4. Where disks may not go, through the CLI's exit codes (the real `maqet` binary) (docs/storage.md#path-safety):
 * every system directory and a symlink into one refused with exit 4 (naming the path and the
 * rule), a missing parent directory exit 3, nothing created in any case; VirtFS of `/` refused
 * at `add` (exit 4) and, through a symlink, at `start` before anything is recorded.
 */
import { mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { SYSTEM_DIRECTORIES } from "../../src/adapters/path-safety.ts";
import { runMaqet, sandboxEnv } from "../support/cli-runner.ts";

let dir: string;
let env: Record<string, string | undefined>;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "maqet-safety-"));
  env = sandboxEnv(dir, { XDG_DATA_HOME: join(dir, "data"), XDG_CONFIG_HOME: join(dir, "config") });
});
afterAll(() => rm(dir, { recursive: true, force: true }));

/** The real `maqet` binary (bin.ts: its umask, its exit codes), stderr without its last newline. */
async function maqet(...args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await runMaqet(args, { env, cwd: dir });
  return { code: r.code, stdout: r.stdout, stderr: r.stderr.replace(/\n$/, "") };
}

const absent = (path: string) =>
  stat(path).then(
    () => false,
    () => true,
  );

// Each call is a process of its own that may open the store: seconds on a loaded machine.
describe("disk creation is refused where it must be, and nothing is created", { timeout: 120_000 }, () => {
  it.each(SYSTEM_DIRECTORIES)("in %s: exit 4, naming the path and the rule", async (system) => {
    const file = `${system}/maqet-safety-test.qcow2`;
    const r = await maqet("disk", "create", file, "--size", "1M", "--json");
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(
      `Refusing to create disk ${file}: ${system} is a system directory where maqet never creates disks.`,
    );
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: "PATH_REFUSED", details: { path: file, rule: system } });
    expect(await absent(file)).toBe(true);
  });

  it("deeper inside one too (/var/lib/x), but /dev/shm is allowed", async () => {
    expect((await maqet("disk", "create", "/var/lib/maqet-safety/x.qcow2", "--size", "1M")).code).toBe(4);
    const shm = `/dev/shm/maqet-safety-${process.pid}.qcow2`;
    try {
      expect((await maqet("disk", "create", shm, "--size", "1M")).code).toBe(0);
      expect((await stat(shm)).mode & 0o777).toBe(0o600);
    } finally {
      await rm(shm, { force: true });
    }
  });

  it("through a symlink to /etc: exit 4, naming the real path", async () => {
    await symlink("/etc", join(dir, "etc-link"));
    const file = join(dir, "etc-link", "maqet-safety-test.qcow2");
    const r = await maqet("disk", "create", file, "--size", "1M");
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`(its real path is /etc/maqet-safety-test.qcow2): /etc is a system directory`);
    expect(await absent("/etc/maqet-safety-test.qcow2")).toBe(true);
  });

  it("a symlink planted where the disk goes is never followed (exit 3: it exists)", async () => {
    const victim = join(dir, "victim.txt");
    await writeFile(victim, "precious");
    await symlink(victim, join(dir, "planted.qcow2"));
    const r = await maqet("disk", "create", join(dir, "planted.qcow2"), "--size", "1M");
    expect(r.code).toBe(3);
    expect(r.stderr).toContain("already exists; maqet never overwrites an image");
    expect(await (await import("node:fs/promises")).readFile(victim, "utf8")).toBe("precious");
  });

  it("in a parent directory that does not exist: exit 3, nothing created", async () => {
    const parent = join(dir, "no", "such");
    const r = await maqet("disk", "create", join(parent, "x.qcow2"), "--size", "1M", "--json");
    expect(r.code).toBe(3);
    expect(r.stderr).toContain(`its directory ${parent} does not exist. Create it first (mkdir -p ${parent})`);
    expect(JSON.parse(r.stdout).error).toMatchObject({ code: "PATH_NOT_FOUND", details: { rule: "parent-exists" } });
    expect(await absent(join(dir, "no"))).toBe(true);
  });

  it("info, check, resize, convert of an image that does not exist: exit 3", async () => {
    const missing = join(dir, "missing.qcow2");
    for (const args of [
      ["info", missing],
      ["check", missing],
      ["resize", missing, "2G"],
      ["convert", missing, join(dir, "out.raw")],
    ]) {
      const r = await maqet("disk", ...args);
      expect(r.code).toBe(3);
      expect(r.stderr).toBe(
        `maqet: Image ${missing} does not exist. Check the path (relative paths start in the current directory).`,
      );
    }
    expect(await absent(join(dir, "out.raw"))).toBe(true);
  });

  it("too little space: exit 1, nothing created", async () => {
    const r = await maqet("disk", "create", join(dir, "huge.qcow2"), "--size", "900000T");
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(
      /Insufficient disk space for .*huge\.qcow2 \(.*qcow2 900000T\): need .* \(size × 1\.1, room to grow\)/,
    );
    expect(await absent(join(dir, "huge.qcow2"))).toBe(true);
  });

  it("a VM's disk in a system directory is refused at add (exit 4), and at start once a symlink leads there", async () => {
    await writeFile(
      join(dir, "etcvm.yaml"),
      "name: etcvm\naccel: tcg\nstorage:\n  - {name: hdd, type: qcow2, file: /etc/maqet-safety-vm.qcow2, size: 1M}\n",
    );
    const add = await maqet("add", join(dir, "etcvm.yaml"));
    expect(add.code).toBe(4);
    expect(add.stderr).toContain("Refusing to create disk /etc/maqet-safety-vm.qcow2");
    expect((await maqet("status", "etcvm")).code).toBe(3); // nothing recorded
    // A directory that was harmless at add and is a symlink into /etc by start: the start checks
    // the real path.
    const via = join(dir, "later-etc");
    await mkdir(via);
    await writeFile(
      join(dir, "linkvm.yaml"),
      `name: linkvm\naccel: tcg\nstorage:\n  - {name: hdd, type: qcow2, file: ${via}/maqet-safety-vm.qcow2, size: 1M}\n`,
    );
    expect((await maqet("add", join(dir, "linkvm.yaml"))).code).toBe(0);
    await rm(via, { recursive: true });
    await symlink("/etc", via);
    const r = await maqet("start", "linkvm");
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("(its real path is /etc/maqet-safety-vm.qcow2)");
    expect(await absent("/etc/maqet-safety-vm.qcow2")).toBe(true);
  });
});

describe("VirtFS shares of / are refused", { timeout: 120_000 }, () => {
  it("as written: `add` exits 4 and defines nothing", async () => {
    await writeFile(
      join(dir, "root-share.yaml"),
      "name: rootshare\naccel: tcg\nstorage:\n  - {name: all, type: virtfs, path: /}\n",
    );
    const r = await maqet("add", join(dir, "root-share.yaml"));
    expect(r.code).toBe(4);
    expect(r.stderr).toContain("Refusing VirtFS share 'all' of /");
    expect((await maqet("status", "rootshare")).code).toBe(3);
  });

  it("through a symlink: `start` exits 4 before QEMU runs or anything is recorded", async () => {
    await symlink("/", join(dir, "root-link"));
    await writeFile(
      join(dir, "link-share.yaml"),
      "name: linkshare\naccel: tcg\nmemory: 32M\nstorage:\n  - {name: all, type: virtfs, path: root-link, options: {mount_tag: all}}\n",
    );
    expect((await maqet("add", join(dir, "link-share.yaml"))).code).toBe(0);
    const r = await maqet("start", "linkshare");
    expect(r.code).toBe(4);
    expect(r.stderr).toContain(`Refusing VirtFS share 'all' of ${join(dir, "root-link")} (its real path is /)`);
    const history = JSON.parse((await maqet("history", "linkshare", "--json")).stdout).events as { type: string }[];
    expect(history.map((h) => h.type)).toEqual(["vm.defined"]);
  });

  it("a real directory is shared read-only with the options MAQET allowed (QEMU accepts the argv)", async () => {
    const share = join(dir, "share");
    await (await import("node:fs/promises")).mkdir(share);
    await writeFile(
      join(dir, "good-share.yaml"),
      "name: goodshare\naccel: tcg\nmemory: 32M\nstorage:\n  - {name: data, type: virtfs, path: share, readonly: true, security_model: mapped-xattr}\n",
    );
    expect((await maqet("add", join(dir, "good-share.yaml"))).code).toBe(0);
    try {
      const r = await maqet("start", "goodshare", "--json");
      expect(r.code).toBe(0);
      const started = JSON.parse((await maqet("history", "goodshare", "--json")).stdout).events.find(
        (h: { type: string }) => h.type === "vm.started",
      );
      expect(started.data.argv).toContain(
        `local,path=${share},mount_tag=data,security_model=mapped-xattr,id=data,readonly=on`,
      );
    } finally {
      await maqet("stop", "goodshare", "--force");
    }
    expect(await readdir(share)).toEqual([]);
  });
});
