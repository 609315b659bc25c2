import { describe, expect, it } from "vitest";
import { accelFor, buildQemuArgv, escapeOption } from "../../src/adapters/qemu-argv.ts";
import { checkAcceleratorChoice, chosenAccelerator } from "../../src/config/accelerator-choice.ts";
import { parseVmConfig } from "../../src/config/parse-vm-config.ts";
import type { DiskDevice, VmConfig } from "../../src/config/vm-config.ts";
import { exitCodeOf } from "../../src/errors/error-codes.ts";
import { errorOf } from "../support/failure.ts";

const vmId = "0b5c3f8e-4a1d-4c7e-9f00-3c2d1e0f9a8b";
const runtime = { vmId, name: "web", qmpSocket: "/run/maqet/web/qmp.sock", pidFile: "/run/maqet/web/qemu.pid" };
const empty: VmConfig = { accel: "auto", args: [], arguments: [], storage: [] };
const cfg = (over: Partial<VmConfig>): VmConfig => ({ ...empty, ...over });
const disk = (over: Partial<DiskDevice>): DiskDevice => ({
  name: "hdd0",
  type: "qcow2",
  file: "/vms/hdd0.qcow2",
  interface: "virtio",
  ...over,
});

const BASE = [
  "-name",
  "guest=web",
  "-uuid",
  vmId,
  "-S",
  "-no-shutdown",
  "-pidfile",
  "/run/maqet/web/qemu.pid",
  "-qmp",
  "unix:/run/maqet/web/qmp.sock,server=on,wait=off",
];

/** The words that follow the fixed prefix and `-accel X`. */
function tail(argv: string[]): string[] {
  expect(argv.slice(0, BASE.length)).toEqual(BASE);
  expect(argv[BASE.length]).toBe("-accel");
  return argv.slice(BASE.length + 2);
}

describe("buildQemuArgv", () => {
  it("builds the minimal argv: identity, control plumbing, accel, headless display", () => {
    expect(buildQemuArgv(empty, runtime, { kvmUsable: false })).toEqual([...BASE, "-accel", "tcg", "-display", "none"]);
  });

  it("carries the vmId as the pid-verification marker (-uuid)", () => {
    const argv = buildQemuArgv(empty, runtime, { kvmUsable: false });
    expect(argv[argv.indexOf("-uuid") + 1]).toBe(vmId);
    // what /proc/<pid>/cmdline will hold (NUL-separated) contains the marker
    expect(argv.join("\0")).toContain(vmId);
  });

  it("refuses a vmId that is not a UUID", () => {
    let error: unknown;
    try {
      buildQemuArgv(empty, { ...runtime, vmId: "vm-1" }, { kvmUsable: false });
    } catch (e) {
      error = e;
    }
    expect(error).toBeMaqetError("INVALID_ARGUMENT");
    expect((error as Error).message).toContain('VM id "vm-1" is not a UUID');
  });

  it("accepts an upper-case UUID", () => {
    const upper = vmId.toUpperCase();
    expect(buildQemuArgv(empty, { ...runtime, vmId: upper }, { kvmUsable: false })).toContain(upper);
  });

  it.each([
    ["auto", true, "kvm"],
    ["auto", false, "tcg"],
    ["kvm", false, "kvm"],
    ["kvm", true, "kvm"],
    ["tcg", true, "tcg"],
    ["tcg", false, "tcg"],
  ] as const)("accel %s with kvmUsable=%s -> %s", (accel, kvmUsable, expected) => {
    const argv = buildQemuArgv(cfg({ accel }), runtime, { kvmUsable });
    expect(argv[argv.indexOf("-accel") + 1]).toBe(expected);
    expect(accelFor(accel, kvmUsable)).toBe(expected);
  });

  it("maps every scalar key, in a fixed order", () => {
    const argv = buildQemuArgv(
      cfg({
        machine: "q35",
        memory: "1G",
        cpu: 2,
        display: "vnc=:1",
        vga: "virtio",
        kernel: "/boot/vmlinuz",
        initrd: "/boot/initrd.img",
        append: "console=ttyS0 quiet",
      }),
      runtime,
      { kvmUsable: true },
    );
    expect(tail(argv)).toEqual([
      "-machine",
      "q35",
      "-m",
      "1G",
      "-smp",
      "2",
      "-display",
      "vnc=:1",
      "-vga",
      "virtio",
      "-kernel",
      "/boot/vmlinuz",
      "-initrd",
      "/boot/initrd.img",
      "-append",
      "console=ttyS0 quiet",
    ]);
  });

  it("keeps paths with spaces as single words", () => {
    const argv = buildQemuArgv(cfg({ kernel: "/my boot/vmlinuz" }), runtime, { kvmUsable: false });
    expect(argv).toContain("/my boot/vmlinuz");
  });

  describe("display default", () => {
    it("uses -display none only when nothing chooses a display", () => {
      expect(tail(buildQemuArgv(cfg({ display: "gtk" }), runtime, { kvmUsable: false }))).toEqual(["-display", "gtk"]);
      expect(tail(buildQemuArgv(cfg({ args: ["-nographic"] }), runtime, { kvmUsable: false }))).toEqual(["-nographic"]);
      expect(tail(buildQemuArgv(cfg({ args: ["--display", "vnc=:0"] }), runtime, { kvmUsable: false }))).toEqual([
        "--display",
        "vnc=:0",
      ]);
      expect(
        tail(
          buildQemuArgv(cfg({ arguments: [{ display: "gtk", "zoom-to-fit": "on" }] }), runtime, { kvmUsable: false }),
        ),
      ).toEqual(["-display", "gtk,zoom-to-fit=on"]);
    });
  });

  describe("storage", () => {
    it("renders -drive with file, if, format and id", () => {
      const argv = buildQemuArgv(
        cfg({ storage: [disk({}), disk({ name: "data", type: "raw", file: "/vms/data.raw", interface: "ide" })] }),
        runtime,
        { kvmUsable: false },
      );
      expect(tail(argv)).toEqual([
        "-display",
        "none",
        "-drive",
        "file=/vms/hdd0.qcow2,if=virtio,format=qcow2,id=hdd0",
        "-drive",
        "file=/vms/data.raw,if=ide,format=raw,id=data",
      ]);
    });

    it("doubles commas in file names", () => {
      const argv = buildQemuArgv(cfg({ storage: [disk({ file: "/vms/a,b,,c.qcow2" })] }), runtime, {
        kvmUsable: false,
      });
      expect(argv).toContain("file=/vms/a,,b,,,,c.qcow2,if=virtio,format=qcow2,id=hdd0");
    });

    it("keeps if=none drives unattached (for -device ...,drive=<name> in arguments)", () => {
      const argv = buildQemuArgv(
        cfg({
          storage: [disk({ interface: "none" })],
          arguments: [{ device: { driver: "virtio-blk-pci", drive: "hdd0" } }],
        }),
        runtime,
        { kvmUsable: false },
      );
      expect(tail(argv)).toEqual([
        "-display",
        "none",
        "-drive",
        "file=/vms/hdd0.qcow2,if=none,format=qcow2,id=hdd0",
        "-device",
        "driver=virtio-blk-pci,drive=hdd0",
      ]);
    });

    it("attaches sata disks to one AHCI controller, one port each", () => {
      const argv = buildQemuArgv(
        cfg({
          storage: [
            disk({ name: "a", file: "/v/a.qcow2", interface: "sata" }),
            disk({ name: "b", file: "/v/b.qcow2" }),
            disk({ name: "c", file: "/v/c.raw", type: "raw", interface: "sata" }),
          ],
        }),
        runtime,
        { kvmUsable: false },
      );
      expect(tail(argv)).toEqual([
        "-display",
        "none",
        "-device",
        "ahci,id=maqet-ahci",
        "-drive",
        "file=/v/a.qcow2,if=none,format=qcow2,id=a",
        "-device",
        "ide-hd,drive=a,bus=maqet-ahci.0",
        "-drive",
        "file=/v/b.qcow2,if=virtio,format=qcow2,id=b",
        "-drive",
        "file=/v/c.raw,if=none,format=raw,id=c",
        "-device",
        "ide-hd,drive=c,bus=maqet-ahci.1",
      ]);
    });

    it("attaches scsi disks to one virtio-scsi controller", () => {
      const argv = buildQemuArgv(
        cfg({
          storage: [disk({ name: "a", interface: "scsi" }), disk({ name: "b", file: "/v/b.qcow2", interface: "scsi" })],
        }),
        runtime,
        { kvmUsable: false },
      );
      expect(tail(argv)).toEqual([
        "-display",
        "none",
        "-device",
        "virtio-scsi-pci,id=maqet-scsi",
        "-drive",
        "file=/vms/hdd0.qcow2,if=none,format=qcow2,id=a",
        "-device",
        "scsi-hd,drive=a,bus=maqet-scsi.0",
        "-drive",
        "file=/v/b.qcow2,if=none,format=qcow2,id=b",
        "-device",
        "scsi-hd,drive=b,bus=maqet-scsi.0",
      ]);
    });
  });

  describe("serial log", () => {
    const withSerial = { ...runtime, serialLog: "/run/maqet/web/serial,1.log" };

    it("adds -serial file:<path> (no comma escaping in the legacy file: syntax)", () => {
      expect(tail(buildQemuArgv(empty, withSerial, { kvmUsable: false }))).toEqual([
        "-display",
        "none",
        "-serial",
        "file:/run/maqet/web/serial,1.log",
      ]);
    });

    it("with a console socket: a socket chardev that logs to serial.log, as the first serial port", () => {
      const withSocket = { ...withSerial, serialSocket: "/run/maqet/web,1/serial.sock" };
      expect(tail(buildQemuArgv(empty, withSocket, { kvmUsable: false }))).toEqual([
        "-display",
        "none",
        "-chardev",
        "socket,id=maqet-serial0,path=/run/maqet/web,,1/serial.sock,server=on,wait=off,logfile=/run/maqet/web/serial,,1.log,logappend=off",
        "-serial",
        "chardev:maqet-serial0",
      ]);
      // The user's own -serial still wins: no chardev, no socket.
      const own = buildQemuArgv(cfg({ args: ["-serial", "stdio"] }), withSocket, { kvmUsable: false });
      expect(own.join(" ")).not.toContain("maqet-serial0");
    });

    it("leaves serial alone when the config sets -serial", () => {
      expect(tail(buildQemuArgv(cfg({ args: ["-serial", "stdio"] }), withSerial, { kvmUsable: false }))).toEqual([
        "-display",
        "none",
        "-serial",
        "stdio",
      ]);
      expect(
        tail(buildQemuArgv(cfg({ arguments: [{ serial: "mon:stdio" }] }), withSerial, { kvmUsable: false })),
      ).toEqual(["-display", "none", "-serial", "mon:stdio"]);
    });
  });

  it("appends rendered arguments, then args verbatim, last", () => {
    const argv = buildQemuArgv(
      cfg({
        memory: "256M",
        storage: [disk({})],
        arguments: ["nodefaults", { netdev: "user", id: "n0" }, { m: "512M" }],
        args: ["-no-reboot", "-d", "guest_errors"],
      }),
      { ...runtime, serialLog: "/s.log" },
      { kvmUsable: false },
    );
    expect(tail(argv)).toEqual([
      "-m",
      "256M",
      "-display",
      "none",
      "-drive",
      "file=/vms/hdd0.qcow2,if=virtio,format=qcow2,id=hdd0",
      "-serial",
      "file:/s.log",
      "-nodefaults",
      "-netdev",
      "user,id=n0",
      "-m",
      "512M",
      "-no-reboot",
      "-d",
      "guest_errors",
    ]);
  });

  it("escapes commas in the name and the QMP socket path", () => {
    const argv = buildQemuArgv(empty, { ...runtime, name: "a,b", qmpSocket: "/r/x,y/qmp.sock" }, { kvmUsable: false });
    expect(argv.slice(0, 2)).toEqual(["-name", "guest=a,,b"]);
    expect(argv).toContain("unix:/r/x,,y/qmp.sock,server=on,wait=off");
  });

  it("is pure: same input, same output, config untouched", () => {
    const config = cfg({ storage: [disk({ interface: "sata" })], arguments: [{ device: { driver: "x" } }] });
    const before = structuredClone(config);
    expect(buildQemuArgv(config, runtime, { kvmUsable: true })).toEqual(
      buildQemuArgv(config, runtime, { kvmUsable: true }),
    );
    expect(config).toEqual(before);
  });
});

describe("escapeOption", () => {
  it.each([
    ["/a/b", "/a/b"],
    ["a,b", "a,,b"],
    [",,", ",,,,"],
    ["", ""],
  ])("%j -> %j", (input, expected) => {
    expect(escapeOption(input)).toBe(expected);
  });
});

describe("accelerator chosen by the config's QEMU words", () => {
  const base: VmConfig = { accel: "auto", args: [], arguments: [], storage: [] };
  const runtime = {
    vmId: "0b5c3f8e-4a1d-4c7e-9f00-3c2d1e0f9a8b",
    name: "a",
    qmpSocket: "/run/m/qmp.sock",
    pidFile: "/run/m/qemu.pid",
  };
  const accelWords = (argv: string[]) => argv.filter((w, i) => w === "-accel" || argv[i - 1] === "-accel");

  it.each([
    [{ arguments: ["enable-kvm"] }, "kvm", "enable-kvm in arguments"],
    [{ arguments: [{ "enable-kvm": null }] }, "kvm", "enable-kvm in arguments"],
    [{ args: ["--enable-kvm"] }, "kvm", "enable-kvm in args"],
    [{ machine: "q35,accel=kvm" }, "kvm", "machine: q35,accel=kvm"],
    [{ arguments: [{ machine: "q35", accel: "tcg" }] }, "tcg", "-machine q35,accel=tcg in arguments"],
    [{ args: ["-accel", "tcg,thread=single"] }, "tcg", "-accel tcg,thread=single in args"],
    [{ args: ["-M", "pc,accel=kvm:tcg"] }, "kvm:tcg", "-M pc,accel=kvm:tcg in args"],
  ] as const)("%o chooses %s: maqet adds no -accel", (extra, accel, source) => {
    const config = { ...base, ...extra } as VmConfig;
    expect(chosenAccelerator(config)).toEqual({ accel, source });
    const argv = buildQemuArgv(config, runtime, { kvmUsable: false });
    expect(accelWords(argv)).toEqual(config.args.includes("-accel") ? ["-accel", "tcg,thread=single"] : []);
  });

  it("adds -accel from accel: when the words choose nothing", () => {
    expect(chosenAccelerator({ ...base, arguments: [{ smp: 2 }], machine: "q35" })).toBeUndefined();
    expect(accelWords(buildQemuArgv({ ...base, machine: "q35" }, runtime, { kvmUsable: false }))).toEqual([
      "-accel",
      "tcg",
    ]);
  });

  it("accel: written in agreement stands; a contradiction is CONFIG_INVALID naming both", () => {
    expect(checkAcceleratorChoice({ ...base, accel: "kvm", arguments: ["enable-kvm"] }, "x.yaml")?.accel).toBe("kvm");
    expect(checkAcceleratorChoice({ ...base, accel: "kvm", machine: "pc,accel=kvm:tcg" }, "x.yaml")?.accel).toBe(
      "kvm:tcg",
    );
    const error = errorOf(() =>
      parseVmConfig("accel: tcg\narguments:\n  - enable-kvm\n", { baseDir: "/tmp", source: "x.yaml" }),
    );
    expect(error).toBeMaqetError("CONFIG_INVALID");
    expect((error as Error).message).toBe(
      "Invalid config: 'accel: tcg' contradicts enable-kvm in arguments (kvm) in x.yaml. Keep one of them: remove accel:, or change the QEMU option to the accelerator you want.",
    );
    expect(exitCodeOf("CONFIG_INVALID")).toBe(3);
  });
});
