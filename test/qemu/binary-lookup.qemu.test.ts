/**
 * qemu-img (and qemu-system) are looked up once per process, however many VMs and disks use
 * them: two VMs with two disks each, started and stopped twice, through one maqet instance.
 */
import { access, constants, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, expect, it } from "vitest";
import { createBinaryLocator } from "../../src/adapters/binary-locator.ts";
import { createMaqet } from "../../src/mod.ts";

const dir = await mkdtemp(join(tmpdir(), "maqet-lookup-"));
afterAll(() => rm(dir, { recursive: true, force: true }));

it("one lookup per program per process, however many disks and VMs", { timeout: 60_000 }, async () => {
  const probes: string[] = [];
  const locator = createBinaryLocator({
    env: { PATH: process.env.PATH },
    isExecutable: async (path) => {
      probes.push(path);
      return access(path, constants.X_OK).then(
        () => true,
        () => false,
      );
    },
  });
  const maqet = createMaqet({ dataDir: join(dir, "data"), runtimeDir: join(dir, "run"), ports: { locator } });
  try {
    for (const name of ["a", "b"]) {
      await writeFile(
        join(dir, `${name}.yaml`),
        `name: ${name}\naccel: tcg\nmemory: 32M\nstorage:\n  - {name: d1, type: qcow2, file: ${name}1.qcow2, size: 8M}\n  - {name: d2, type: raw, file: ${name}2.img, size: 8M}\n`,
      );
      await maqet.add(join(dir, `${name}.yaml`));
    }
    for (let round = 0; round < 2; round++) {
      await Promise.all([maqet.start("a"), maqet.start("b")]);
      await Promise.all([maqet.stop("a", { force: true }), maqet.stop("b", { force: true })]);
    }
    // Four disk files were created with qemu-img, QEMU started four times.
    for (const f of ["a1.qcow2", "a2.img", "b1.qcow2", "b2.img"]) await access(join(dir, f));
    expect(locator.lookups).toBe(2);
    expect(probes.filter((p) => p.endsWith("/qemu-img")).length).toBeGreaterThanOrEqual(1);
    // PATH was walked once for qemu-img: at most one probe per PATH entry (PATH may repeat a dir).
    const pathEntries = (process.env.PATH ?? "").split(":").filter(Boolean).length;
    expect(probes.filter((p) => p.endsWith("/qemu-img")).length).toBeLessThanOrEqual(pathEntries);
  } finally {
    await maqet.close();
  }
});
