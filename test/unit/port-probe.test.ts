/**
 * The host side of `ports:` and `--wait-for ssh`, on real loopback sockets: a taken port is
 * PORT_IN_USE naming the entry, `0` becomes a free port (distinct within one VM), the SSH banner
 * check tells an SSH server from a port that only accepts; QEMU's own refusal (its exact 7.2
 * wording) maps to PORT_IN_USE; the `ssh` wait condition parses and needs a forward to 22; the
 * ssh runner's argument list and exit code (a fake ssh program).
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { withForwardRefusal } from "../../src/actors/guest-access.ts";
import { parseWaitCondition, sshEndpoint } from "../../src/actors/wait-condition.ts";
import { createPortProbe } from "../../src/adapters/port-probe.ts";
import { runSsh, sshArgs } from "../../src/adapters/run-ssh.ts";
import type { PortForward } from "../../src/config/vm-config.ts";
import { MaqetError } from "../../src/errors/maqet-error.ts";

const servers: Server[] = [];
afterEach(() => {
  for (const s of servers.splice(0)) s.close();
});

function listen(onConnection?: (socket: import("node:net").Socket) => void): Promise<number> {
  const server = createServer(onConnection ?? ((s) => s.end()));
  servers.push(server);
  return new Promise((resolve) =>
    server.listen({ host: "127.0.0.1", port: 0 }, () => resolve((server.address() as { port: number }).port)),
  );
}

const tcp = (hostPort: number, guestPort = 22): PortForward => ({
  hostIp: "127.0.0.1",
  hostPort,
  guestPort,
  protocol: "tcp",
});

describe("bindForwards", () => {
  it("a taken port is PORT_IN_USE naming the entry and how to fix it", async () => {
    const taken = await listen();
    const error = await createPortProbe()
      .bindForwards([tcp(0, 80), tcp(taken, 22)])
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MaqetError);
    expect(error).toMatchObject({ code: "PORT_IN_USE", details: { keyPath: "ports[1]", hostPort: taken } });
    expect((error as MaqetError).message).toContain(`Host port 127.0.0.1:${taken}/tcp (ports[1]) is already in use`);
    expect((error as MaqetError).exitCode).toBe(3);
  });

  it("0 becomes a free port, different for each forward; a fixed free port stays", async () => {
    const fixed = await listen();
    await Promise.all(servers.splice(0).map((s) => new Promise((resolve) => s.close(resolve))));
    const bound = await createPortProbe().bindForwards([
      tcp(0, 22),
      tcp(0, 80),
      tcp(fixed, 8080),
      { ...tcp(0, 53), protocol: "udp" },
    ]);
    expect(bound[0]!.hostPort).toBeGreaterThan(0);
    expect(bound[1]!.hostPort).toBeGreaterThan(0);
    expect(bound[0]!.hostPort).not.toBe(bound[1]!.hostPort);
    expect(bound[2]!.hostPort).toBe(fixed);
    expect(bound[3]).toMatchObject({ protocol: "udp", guestPort: 53 });
    expect(bound[3]!.hostPort).toBeGreaterThan(0);
  });
});

describe("sshAnswers", () => {
  it("true for an SSH identification line, false for a port that accepts and closes", async () => {
    const probe = createPortProbe();
    const ssh = await listen((s) => s.write("SSH-2.0-dropbear_2022.83\r\n"));
    const closer = await listen((s) => s.end());
    const chatty = await listen((s) => s.write("HTTP/1.0 400 Bad Request\r\n\r\n"));
    expect(await probe.sshAnswers("127.0.0.1", ssh, 2000)).toBe(true);
    expect(await probe.sshAnswers("127.0.0.1", closer, 2000)).toBe(false);
    expect(await probe.sshAnswers("127.0.0.1", chatty, 300)).toBe(false);
  });
});

describe("QEMU's refusal of a forward", () => {
  it("maps QEMU 7.2's message to PORT_IN_USE with the entry; other errors pass", () => {
    const start = new MaqetError("START_FAILED", "QEMU exited");
    const stderr =
      "qemu-system-x86_64: -netdev user,id=maqet-net0,hostfwd=tcp:127.0.0.1:34791-:22: Could not set up host forwarding rule 'tcp:127.0.0.1:34791-:22'";
    const mapped = withForwardRefusal(start, stderr, [tcp(8080, 80), tcp(34791, 22)]);
    expect(mapped).toMatchObject({ code: "PORT_IN_USE", details: { hostPort: 34791 } });
    expect((mapped as MaqetError).message).toContain("(ports[1]) is already in use");
    expect(withForwardRefusal(start, "qemu: something else", [tcp(1)])).toBe(start);
  });
});

describe("--wait-for ssh", () => {
  it("parses, and needs a forward to guest port 22", () => {
    expect(parseWaitCondition("ssh")).toEqual({ kind: "ssh" });
    const config = { accel: "auto" as const, args: [], arguments: [], storage: [] };
    expect(() => sshEndpoint({ name: "web", config })).toThrow(
      /forwards no host port to guest port 22.*ports: \["0:22"\]/,
    );
    expect(sshEndpoint({ name: "web", config: { ...config, ports: [tcp(0)] }, forwards: [tcp(40000)] })).toEqual({
      host: "127.0.0.1",
      port: 40000,
    });
    expect(sshEndpoint({ name: "web", config, forwards: [{ ...tcp(2222), hostIp: "0.0.0.0" }] })).toEqual({
      host: "127.0.0.1",
      port: 2222,
    });
  });
});

describe("runSsh", () => {
  const target = {
    host: "127.0.0.1",
    port: 40022,
    user: "ada",
    identityFile: "/k/id_ed25519",
    knownHostsFile: "/k/known_hosts",
  };

  it("passes the VM's key, its known_hosts and the command after --, as one argument list", () => {
    expect(sshArgs(target, ["uname", "-a"])).toEqual([
      "-i",
      "/k/id_ed25519",
      "-o",
      "IdentitiesOnly=yes",
      "-o",
      "PreferredAuthentications=publickey",
      "-o",
      "StrictHostKeyChecking=accept-new",
      "-o",
      "UserKnownHostsFile=/k/known_hosts",
      "-o",
      "LogLevel=ERROR",
      "-p",
      "40022",
      "-l",
      "ada",
      "127.0.0.1",
      "--",
      "uname",
      "-a",
    ]);
    expect(sshArgs(target, []).at(-1)).toBe("127.0.0.1");
  });

  it("returns the program's exit code; a missing program is BINARY_NOT_FOUND", async () => {
    const dir = mkdtempSync(join(tmpdir(), "maqet-fake-ssh-"));
    try {
      // A fake ssh: exits with the number after `--` (no shell is involved in calling it).
      const fake = join(dir, "ssh");
      writeFileSync(fake, `#!${process.execPath}\nprocess.exit(Number(process.argv.at(-1)));\n`, { mode: 0o755 });
      expect(await runSsh(target, ["exit", "7"], fake)).toBe(7);
      expect(await runSsh(target, ["exit", "0"], fake)).toBe(0);
      await expect(runSsh(target, [], join(dir, "no-such-ssh"))).rejects.toMatchObject({ code: "BINARY_NOT_FOUND" });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
