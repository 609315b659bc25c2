/**
 * Disks as a new user meets them, with real QEMU and qemu-img: a disk path in a system directory
 * is refused at `add` (exit 4), not first at `start`; a start that fails removes the images it
 * created for that start, and only those (an existing image is the user's). Issue #11.
 */
import { execFileSync } from "node:child_process";
import { access, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type CliSandbox, createCliSandbox } from "../support/cli-runner.ts";

const exists = (path: string) =>
  access(path).then(
    () => true,
    () => false,
  );

describe("disk paths at add, disks of a failed start (real QEMU)", { timeout: 240_000 }, () => {
  let box: CliSandbox;
  beforeAll(async () => {
    box = await createCliSandbox();
  }, 300_000);
  afterAll(() => box.cleanup());

  it("add refuses a disk to be created in a system directory: exit 4, nothing recorded", async () => {
    await writeFile(
      join(box.home, "sys.yaml"),
      `name: sys
binary: /usr/bin/qemu-system-x86_64
accel: tcg
memory: 64M
storage:
  - name: hdd0
    type: qcow2
    file: /etc/maqet-e2e-never.qcow2
    size: 16M
`,
    );
    const add = await box.run(["add", "sys.yaml"]);
    expect(add.code).toBe(4);
    expect(add.stderr).toContain("Disk 'hdd0': Refusing to create disk /etc/maqet-e2e-never.qcow2");
    expect(add.stderr).toContain("/etc is a system directory");
    const json = await box.run(["add", "sys.yaml", "--json"]);
    expect(json.json<{ error: { code: string } }>().error.code).toBe("PATH_REFUSED");
    expect((await box.run(["ls", "--json"])).json<unknown[]>()).toEqual([]);
    expect(await exists("/etc/maqet-e2e-never.qcow2")).toBe(false);
    // apply refuses it too, on an existing VM.
    await writeFile(
      join(box.home, "ok.yaml"),
      "name: ok\nbinary: /usr/bin/qemu-system-x86_64\naccel: tcg\nmemory: 64M\n",
    );
    expect((await box.run(["add", "ok.yaml"])).code).toBe(0);
    const apply = await box.run(["apply", "ok", "sys.yaml"]);
    expect(apply.code).toBe(4);
    expect(apply.stderr).toContain("/etc is a system directory");
  });

  it("a failed start removes the image it created, keeps the user's existing one, records no disk.created", async () => {
    const kept = join(box.home, "existing.qcow2");
    execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", kept, "16M"]);
    const fresh = join(box.home, "vms", "fresh.qcow2");
    await writeFile(
      join(box.home, "bad.yaml"),
      `name: bad
binary: /usr/bin/qemu-system-x86_64
accel: tcg
memory: 64M
storage:
  - name: hdd0
    type: qcow2
    file: ${fresh}
    size: 16M
  - name: hdd1
    type: qcow2
    file: ${kept}
args:
  - -device
  - no-such-device-model
`,
    );
    expect((await box.run(["add", "bad.yaml"])).code).toBe(0);
    const start = await box.run(["start", "bad"]);
    expect(start.code).toBe(1);
    expect(start.stderr).toMatch(/no-such-device-model/);
    expect(await exists(fresh)).toBe(false);
    expect(await exists(kept)).toBe(true);
    const types = (await box.run(["history", "bad", "--json"]))
      .json<{ events: Array<{ type: string }> }>()
      .events.map((e) => e.type);
    expect(types).toEqual(["vm.defined", "vm.start-requested", "vm.start-failed"]);
  });
});
