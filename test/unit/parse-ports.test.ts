/**
 * `ports:` from YAML to forwards, every spelling, the errors with their key path, the rule for a
 * config with networking of its own, and the argv the forwards become.
 */
import { describe, expect, it } from "vitest";
import { buildQemuArgv, forwardArgs } from "../../src/adapters/qemu-argv.ts";
import { parseVmConfig } from "../../src/config/parse-vm-config.ts";
import { isMaqetError } from "../../src/errors/maqet-error.ts";

const parse = (yaml: string) => parseVmConfig(yaml, { source: "vm.yaml", baseDir: "/srv" });

function refusal(yaml: string): { keyPath: unknown; message: string } {
  try {
    parse(yaml);
  } catch (error) {
    if (isMaqetError(error, "CONFIG_INVALID")) return { keyPath: error.details.keyPath, message: error.message };
    throw error;
  }
  throw new Error(`accepted: ${yaml}`);
}

describe("ports: spellings", () => {
  it.each([
    ['"2222:22"', { hostIp: "127.0.0.1", hostPort: 2222, guestPort: 22, protocol: "tcp" }],
    ["2222:22", { hostIp: "127.0.0.1", hostPort: 2222, guestPort: 22, protocol: "tcp" }],
    ['"127.0.0.1:8080:80/tcp"', { hostIp: "127.0.0.1", hostPort: 8080, guestPort: 80, protocol: "tcp" }],
    ['"0.0.0.0:8080:80"', { hostIp: "0.0.0.0", hostPort: 8080, guestPort: 80, protocol: "tcp" }],
    ['"0:22"', { hostIp: "127.0.0.1", hostPort: 0, guestPort: 22, protocol: "tcp" }],
    ['"22"', { hostIp: "127.0.0.1", hostPort: 0, guestPort: 22, protocol: "tcp" }],
    ["22", { hostIp: "127.0.0.1", hostPort: 0, guestPort: 22, protocol: "tcp" }],
    ['"127.0.0.1::22"', { hostIp: "127.0.0.1", hostPort: 0, guestPort: 22, protocol: "tcp" }],
    ['"5353:53/udp"', { hostIp: "127.0.0.1", hostPort: 5353, guestPort: 53, protocol: "udp" }],
    ['"10.1.2.3:2222:22/tcp"', { hostIp: "10.1.2.3", hostPort: 2222, guestPort: 22, protocol: "tcp" }],
  ])("%s", (entry, expected) => {
    expect(parse(`ports: [${entry}]\n`).ports).toEqual([expected]);
  });

  it("keeps the order of several forwards; an empty list is no forwards", () => {
    const config = parse('ports: ["2222:22", "0:80", "127.0.0.1:9090:9090/udp"]\n');
    expect(config.ports?.map((f) => `${f.hostPort}->${f.guestPort}/${f.protocol}`)).toEqual([
      "2222->22/tcp",
      "0->80/tcp",
      "9090->9090/udp",
    ]);
    expect(parse("ports: []\n").ports).toBeUndefined();
    expect(parse("name: x\n").ports).toBeUndefined();
  });
});

describe("ports: errors name the entry", () => {
  it.each([
    ['ports: "2222:22"\n', "ports", /a list of a port forward/],
    ['ports: ["2222:22", "abc"]\n', "ports[1]", /'ports\[1\]' must be a port forward/],
    ['ports: ["2222:0"]\n', "ports[0]", /guest port must be 1-65535/],
    ['ports: ["2222:70000"]\n', "ports[0]", /guest port must be 1-65535/],
    ['ports: ["70000:22"]\n', "ports[0]", /host port must be 0-65535/],
    ['ports: ["300.1.1.1:2222:22"]\n', "ports[0]", /'300\.1\.1\.1' is not an IPv4 address/],
    ['ports: ["[::1]:2222:22"]\n', "ports[0]", /IPv6/],
    ['ports: ["8000-8010:8000-8010"]\n', "ports[0]", /no ranges/],
    ['ports: ["22/sctp"]\n', "ports[0]", /port forward like/],
    ["ports: [{target: 22, published: 2222}]\n", "ports[0]", /long form is not supported/],
    ['ports: ["2222:22", "0:80", "2222:80"]\n', "ports[2]", /ports\[0\] uses tcp port 2222/],
  ])("%s", (yaml, keyPath, message) => {
    const error = refusal(yaml);
    expect(error.keyPath).toBe(keyPath);
    expect(error.message).toMatch(message);
    expect(error.message).toContain("vm.yaml");
  });

  it("the same host port for tcp and udp is two forwards, not a clash", () => {
    expect(parse('ports: ["5353:53/udp", "5353:53/tcp"]\n').ports).toHaveLength(2);
  });
});

describe("ports: with the config's own networking", () => {
  it.each([
    ["args: [-netdev, 'user,id=n0']\n", "args[0]"],
    ["args: [-nic, user]\n", "args[0]"],
    ["args: [-smp, '2', --net, none]\n", "args[2]"],
    ["arguments: [{smp: 2}, {netdev: {user: null, id: n0}}]\n", "arguments[1]"],
    ["arguments: [{netdev: 'type=user,id=n0'}]\n", "arguments[0]"],
  ])("user-mode or no networking of its own is refused: %s", (extra, at) => {
    const error = refusal(`ports: ["2222:22"]\n${extra}`);
    expect(error.keyPath).toBe("ports");
    expect(error.message).toContain(at);
    expect(error.message).toMatch(/remove ports: and write the forwards into that -netdev as hostfwd=/);
  });

  it("other back-ends stay as further NICs", () => {
    const config = parse(
      'ports: ["2222:22"]\nargs: [-netdev, "tap,id=t0,ifname=tap0,script=no", -device, "e1000,netdev=t0"]\n',
    );
    expect(config.ports).toHaveLength(1);
  });

  it("without ports: the config's own networking is untouched", () => {
    expect(parse("args: [-netdev, 'user,id=n0']\n").args).toEqual(["-netdev", "user,id=n0"]);
  });
});

describe("hostfwd rendering", () => {
  const vmId = "0b5c3f8e-4a1d-4c7e-9f00-3c2d1e0f9a8b";
  const runtime = { vmId, name: "web", qmpSocket: "/run/m/qmp.sock", pidFile: "/run/m/qemu.pid" };

  it("one user-mode NIC with a hostfwd per forward", () => {
    expect(
      forwardArgs([
        { hostIp: "127.0.0.1", hostPort: 2222, guestPort: 22, protocol: "tcp" },
        { hostIp: "0.0.0.0", hostPort: 5353, guestPort: 53, protocol: "udp" },
      ]),
    ).toEqual([
      "-netdev",
      "user,id=maqet-net0,hostfwd=tcp:127.0.0.1:2222-:22,hostfwd=udp:0.0.0.0:5353-:53",
      "-device",
      "virtio-net-pci,netdev=maqet-net0",
    ]);
  });

  it("the argv uses this run's resolved ports, before the user's own words", () => {
    const config = parse('ports: ["0:22", "8080:80"]\nargs: [-smp, "2"]\n');
    const argv = buildQemuArgv(
      config,
      {
        ...runtime,
        forwards: [
          { hostIp: "127.0.0.1", hostPort: 41873, guestPort: 22, protocol: "tcp" },
          { hostIp: "127.0.0.1", hostPort: 8080, guestPort: 80, protocol: "tcp" },
        ],
      },
      { kvmUsable: false },
    );
    const netdev = argv.indexOf("-netdev");
    expect(argv[netdev + 1]).toBe("user,id=maqet-net0,hostfwd=tcp:127.0.0.1:41873-:22,hostfwd=tcp:127.0.0.1:8080-:80");
    expect(argv.slice(-2)).toEqual(["-smp", "2"]);
    // Without a run (a dry run), the config's own ports: 0 = chosen at start.
    const planned = buildQemuArgv(config, runtime, { kvmUsable: false });
    expect(planned[planned.indexOf("-netdev") + 1]).toContain("hostfwd=tcp:127.0.0.1:0-:22");
  });

  it("the seed image is a read-only virtio drive; no ports and no seed add nothing", () => {
    const argv = buildQemuArgv(
      parse("cloud-init: {}\n"),
      { ...runtime, seedImage: "/run/m/a,b/cidata.iso" },
      { kvmUsable: false },
    );
    expect(argv).toContain("file=/run/m/a,,b/cidata.iso,if=virtio,format=raw,readonly=on,id=maqet-seed");
    const plain = buildQemuArgv(parse("memory: 64M\n"), runtime, { kvmUsable: false });
    expect(plain.some((w) => w.includes("maqet-net0") || w.includes("maqet-seed"))).toBe(false);
  });
});

describe("written back as YAML (maqet edit, info --format yaml)", () => {
  it("ports and cloud-init come back as the same config", async () => {
    const { vmConfigToYaml } = await import("../../src/api/config-yaml.ts");
    const config = parse(
      'ports: ["0:22", "0.0.0.0:8080:80", "5353:53/udp"]\ncloud-init:\n  users: [{name: ada, groups: [sudo]}]\n  runcmd: [[touch, /x]]\n',
    );
    const text = vmConfigToYaml(config);
    expect(text).toContain("cloud-init:");
    expect(parse(text)).toEqual(config);
  });
});
