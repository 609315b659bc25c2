/**
 * Into the guest, as a user does it (the built CLI, real QEMU under TCG, the test guest with
 * maqet.net=on: virtio-net, the NoCloud seed read, dropbear on 22, a listener on 80):
 *
 * - `maqet add` of a config with `cloud-init:` and `ports: ["0:22", "<fixed>:80"]`, then
 *   `start --wait-for ssh` (says what it waits for), `maqet port` (text and JSON), a TCP
 *   connection from the host to the forwarded port 80 reaching the guest's listener, and
 *   `maqet ssh VM -- uname -a` printing the guest's kernel, with ssh's exit code;
 * - the key files are 0600 in 0700 directories, and the private key is in no event, log or output;
 * - a host port already in use fails `start` with exit 3 (PORT_IN_USE), recorded, no QEMU left.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { createConnection, createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { AGENT_MODE, type CliSandbox, createCliSandbox } from "../support/cli-runner.ts";
import { freePort } from "../support/free-port.ts";
import { ensureGuest, type Guest, guestVmYaml } from "../support/guest.ts";

/** The first line a TCP server at host:port sends. */
function firstLine(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = "";
    const socket = createConnection({ host: "127.0.0.1", port });
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no line from 127.0.0.1:${port} within 20 s (got ${JSON.stringify(text)})`));
    }, 20_000);
    socket.on("data", (d) => {
      text += d;
      if (text.includes("\n")) {
        clearTimeout(timer);
        socket.destroy();
        resolve(text.split("\n")[0]!);
      }
    });
    socket.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
  });
}

/** Processes whose command line carries the VM id (QEMU's -uuid marker). */
function processesOf(vmId: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, "latin1").split("\0").includes(vmId)) found.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return found;
}

function vmYaml(guest: Guest, name: string, ports: string[], cloudInit: boolean): string {
  return guestVmYaml(
    guest,
    { name, net: true },
    { ports, ...(cloudInit ? { "cloud-init": { runcmd: [["echo", "hello"]] } } : {}) },
  );
}

interface PortListJson {
  vm: string;
  state: string;
  live: boolean;
  forwards: { hostIp: string; hostPort: number; guestPort: number; protocol: string; auto: boolean }[];
  ssh?: { host: string; port: number; user: string; identityFile: string; knownHostsFile: string };
}

describe("ports, cloud-init and maqet ssh on the test guest (real QEMU, TCG)", { timeout: 400_000 }, () => {
  let box: CliSandbox;
  let guest: Guest;
  let blocker: Server | undefined;
  const outputs: string[] = [];

  beforeAll(async () => {
    guest = await ensureGuest();
    box = await createCliSandbox();
  }, 10 * 60_000);
  afterAll(async () => {
    blocker?.close();
    await box.run(["stop", "net", "--force"]);
    await box.cleanup();
  });

  const run = async (args: string[]) => {
    const result = await box.run(args);
    outputs.push(result.stdout, result.stderr);
    return result;
  };

  it("add → start --wait-for ssh → port → TCP to the guest → ssh -- uname -a; the key stays in 0600 files", async () => {
    const webPort = await freePort();
    await writeFile(join(box.home, "net.yaml"), vmYaml(guest, "net", ["0:22", `${webPort}:80`], true));
    expect((await run(["add", "net.yaml"])).code).toBe(0);

    // Before a start: the config's forwards, 0 = chosen at start.
    const planned = (await run(["port", "net", "--json"])).json<PortListJson>();
    expect(planned).toMatchObject({ state: "stopped", live: false });
    expect(planned.forwards.map((f) => [f.hostPort, f.guestPort, f.auto])).toEqual([
      [0, 22, true],
      [webPort, 80, false],
    ]);

    const start = await run(["start", "net", "--wait-for", "ssh", "--timeout", "240"]);
    expect(start.code, start.stderr).toBe(0);
    // In-process, the CLI says what it waits for (through an agent the start runs there).
    if (!AGENT_MODE)
      expect(start.stderr).toMatch(
        /starting VM 'net': QEMU is up \(pid \d+\), waiting up to \d+s for its SSH server: an SSH-2\.0 banner on 127\.0\.0\.1:\d+ \(forwarded to guest port 22\)/,
      );

    const list = (await run(["port", "net", "--json"])).json<PortListJson>();
    expect(list).toMatchObject({ vm: "net", state: "running", live: true });
    const ssh22 = list.forwards.find((f) => f.guestPort === 22)!;
    expect(ssh22.hostPort).toBeGreaterThan(0);
    expect(ssh22).toMatchObject({ hostIp: "127.0.0.1", protocol: "tcp", auto: true });
    expect(list.forwards.find((f) => f.guestPort === 80)).toMatchObject({ hostPort: webPort, auto: false });
    expect(list.ssh).toMatchObject({ host: "127.0.0.1", port: ssh22.hostPort, user: "root" });
    const text = await run(["port", "net"]);
    expect(text.stdout).toContain(`22/tcp -> 127.0.0.1:${ssh22.hostPort} (chosen at start)`);
    expect(text.stdout).toContain(`80/tcp -> 127.0.0.1:${webPort}`);

    // The resolved port is the fact of this run.
    const events = await run(["events", "--vm", "net", "--json"]);
    expect(events.code).toBe(0);
    const started = events.stdout
      .split("\n")
      .filter((l) => l.trim().startsWith("{"))
      .map((l) => JSON.parse(l) as { type: string; data: { forwards?: unknown[] } })
      .find((e) => e.type === "vm.started");
    expect(started?.data.forwards).toEqual([
      { hostIp: "127.0.0.1", hostPort: ssh22.hostPort, guestPort: 22, protocol: "tcp" },
      { hostIp: "127.0.0.1", hostPort: webPort, guestPort: 80, protocol: "tcp" },
    ]);

    // From the host, through the forward, to the guest's listener.
    expect(await firstLine(webPort)).toMatch(/^MAQET-HELLO 6\.1\./);

    const uname = await run(["ssh", "net", "--", "uname", "-a"]);
    expect(uname.code, uname.stderr).toBe(0);
    expect(uname.stdout).toMatch(/^Linux net 6\.1\.\S+ .* x86_64/);
    const failing = await run(["ssh", "net", "--", "exit", "7"]);
    expect(failing.code).toBe(7);

    // Key files: 0600 in 0700 directories, the private key nowhere else.
    const key = list.ssh!;
    expect(statSync(key.identityFile).mode & 0o777).toBe(0o600);
    expect(statSync(`${key.identityFile}.pub`).mode & 0o777).toBe(0o600);
    expect(statSync(key.knownHostsFile).mode & 0o777).toBe(0o600);
    expect(statSync(join(key.identityFile, "..")).mode & 0o777).toBe(0o700);
    expect(statSync(join(key.identityFile, "../..")).mode & 0o777).toBe(0o700);
    const privateKey = await readFile(key.identityFile, "utf8");
    const secret = privateKey.split("\n").slice(1, -2).join("");
    expect(secret.length).toBeGreaterThan(100);
    const history = await run(["history", "net", "--json"]);
    const runtimeDir = statSync(join(box.env.XDG_RUNTIME_DIR!, "maqet")).isDirectory()
      ? join(box.env.XDG_RUNTIME_DIR!, "maqet")
      : "";
    const logs = runtimeDir
      ? readdirSync(runtimeDir, { recursive: true, withFileTypes: true })
          .filter((e) => e.isFile() && /\.(log)$/.test(e.name))
          .map((e) => readFileSync(join(e.parentPath, e.name), "latin1"))
      : [];
    expect(logs.length).toBeGreaterThan(0);
    for (const text of [...outputs, events.stdout, history.stdout, ...logs]) {
      for (const line of privateKey.split("\n").slice(1, -2)) expect(text).not.toContain(line);
    }
    // The public key did reach the guest through the seed.
    const serial = logs.join("\n");
    expect(serial).toMatch(/MAQET-SEED \/dev\/vd[a-z] keys=1 hostname=net/);
  });

  it("rm takes the VM's key directory with it", async () => {
    const list = (await run(["port", "net", "--json"])).json<PortListJson>();
    const keyDir = join(list.ssh!.identityFile, "../..");
    expect(statSync(keyDir).isDirectory()).toBe(true);
    expect((await run(["rm", "net", "--force"])).code).toBe(0);
    expect(() => statSync(keyDir)).toThrow(/ENOENT/);
  });

  it("a host port in use fails start with exit 3, recorded, and leaves no QEMU running", async () => {
    const port = await freePort();
    blocker = createServer();
    await new Promise<void>((resolve) => blocker!.listen({ host: "127.0.0.1", port }, resolve));
    await writeFile(join(box.home, "busy.yaml"), vmYaml(guest, "busy", [`${port}:80`], false));
    expect((await run(["add", "busy.yaml"])).code).toBe(0);
    const status = (await run(["status", "busy", "--json"])).json<{ id: string }>();

    const start = await run(["start", "busy"]);
    expect(start.code).toBe(3);
    expect(start.stderr).toContain(`Host port 127.0.0.1:${port}/tcp (ports[0]) is already in use`);
    expect((await run(["status", "busy", "--json"])).json<{ state: string }>().state).toBe("stopped");
    expect(processesOf(status.id)).toEqual([]);
    const history = await run(["history", "busy", "--json"]);
    expect(history.stdout).toContain("PORT_IN_USE");
  });
});
