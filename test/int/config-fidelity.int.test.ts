/**
 * Config fidelity through the store, on both dialects: a YAML added through the real facade
 * renders, after the store (PostgreSQL `jsonb` reorders object keys) and a replay of the stream,
 * the projection row and a projection rebuild, exactly the argv that `parseVmConfig` gives for
 * the same text. MAQET's `arguments` give the first key of a mapping a meaning, so a lost key
 * order is a wrong argv (`-netdev id=n0,user` → `qemu-system-x86_64: -id: invalid option`).
 */
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VM_LIST_PROJECTION } from "../../src/actors/vm-list-projection.ts";
import { foldVmEvents } from "../../src/actors/vm-view.ts";
import { buildQemuArgv } from "../../src/adapters/qemu-argv.ts";
import { createMaqet } from "../../src/api/maqet.ts";
import { openRuntime } from "../../src/api/runtime.ts";
import { parseVmConfig } from "../../src/config/parse-vm-config.ts";
import type { VmConfig } from "../../src/config/vm-config.ts";
import { vmStreamId } from "../../src/events/vm-events.ts";
import { type TestDatabase, testDatabases } from "../support/test-databases.ts";

const VM_ID = "0b5c3f8e-4a1d-4c7e-9f00-3c2d1e0f9a8b";
const RUNTIME = { vmId: VM_ID, name: "vm", qmpSocket: "/run/m/qmp.sock", pidFile: "/run/m/qemu.pid" };
const argvOf = (config: VmConfig): string[] => buildQemuArgv(config, RUNTIME, { kvmUsable: false });

/** The networking example of docs/config.md and issue 11, and the nested-positional forms. */
const NETWORKING = `name: net
memory: 64M
arguments:
  - netdev: user
    id: n0
    hostfwd: tcp::2222-:22
  - device: {driver: virtio-net-pci, netdev: n0}
  - object: {rng-random: null, id: rng0, filename: /dev/urandom}
  - display: {gtk: null, zoom-to-fit: "on"}
  - chardev: socket
    path: /tmp/x.sock
    server: "on"
    wait: "off"
    id: c0
`;

describe.each(testDatabases())("config fidelity on $name", ({ name: dialect, open }) => {
  let t: TestDatabase | undefined;
  let dataDir: string;
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), "maqet-fidelity-"));
    // PGlite: the facade's own embedded store in dataDir; PostgreSQL: a fresh server database.
    if (dialect === "pg") t = await open();
  });
  afterAll(async () => {
    await t?.close();
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it("the networking YAML renders the same argv after add, replay, projection and rebuild", async () => {
    const file = join(dataDir, "net.yaml");
    await writeFile(file, NETWORKING);
    const options = { dataDir, runtimeDir: join(dataDir, "run"), env: {}, databaseUrl: t?.url };
    const expected = argvOf(parseVmConfig(NETWORKING, { source: file, baseDir: dataDir }));
    expect(expected).toContain("user,id=n0,hostfwd=tcp::2222-:22");
    const maqet = createMaqet(options);
    try {
      await maqet.add(file);
    } finally {
      await maqet.close();
    }
    const rt = await openRuntime(options);
    try {
      const listed = await rt.orchestrator.find("net");
      const events = await rt.store.readStream(vmStreamId(listed.vmId));
      expect(argvOf(foldVmEvents(events)!.config)).toEqual(expected);
      expect(argvOf(listed.config)).toEqual(expected);
      await rt.projections!.rebuild(VM_LIST_PROJECTION);
      expect(argvOf((await rt.orchestrator.find("net")).config)).toEqual(expected);
    } finally {
      await rt.close();
    }
  }, 180_000); // opens the embedded store twice (a fresh PGlite: 5-60 s on a loaded machine)
});
