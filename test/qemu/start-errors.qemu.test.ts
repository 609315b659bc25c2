/**
 * A start QEMU refuses reports QEMU's own message, every time: in the error the caller gets, in
 * `vm.start-failed` (`message` and `stderr`) and in `status().lastError`. QEMU refusing a device
 * opens its QMP socket first and then exits, so "socket closed before the greeting" used to win
 * the race against the exit now and then; twenty starts in a row must all carry QEMU's words.
 */
import { existsSync } from "node:fs";
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { isMaqetError, type Maqet } from "../../src/mod.ts";
import { maqetForSuite } from "../support/library-maqet.ts";

const BAD_STARTS = 20;

describe("QEMU's message on a refused start (real QEMU)", () => {
  let dir: string;
  let maqet: Maqet;
  maqetForSuite("maqet-start-errors-", (s) => ({ dir, maqet } = s));

  it(`${BAD_STARTS} refused starts in a row all report QEMU's stderr`, async () => {
    const file = join(dir, "bad.yaml");
    // Refused after the QMP socket exists: the case that raced.
    await writeFile(file, "name: bad\naccel: tcg\nmemory: 32M\narguments:\n  - device: no-such-device-model\n");
    await maqet.add(file);
    const messages: string[] = [];
    for (let i = 0; i < BAD_STARTS; i++) {
      const error = await maqet.start("bad", { timeoutMs: 10_000 }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isMaqetError(error, "START_FAILED"), String(error)).toBe(true);
      messages.push((error as Error).message);
    }
    const qemuSaid = /qemu-system-x86_64: .*no-such-device-model/;
    expect(messages.filter((m) => !qemuSaid.test(m))).toEqual([]);
    const failed = (await maqet.history("bad")).filter((h) => h.type === "vm.start-failed");
    expect(failed).toHaveLength(BAD_STARTS);
    for (const event of failed) {
      const data = event.data as { message: string; stderr?: string };
      expect(data.message).toMatch(qemuSaid);
      expect(data.stderr).toMatch(qemuSaid);
    }
    expect((await maqet.status("bad")).lastError?.message).toMatch(qemuSaid);
  }, 180_000);

  it.each([
    ["machine: pc,accel=tcg", "machine: pc,accel=tcg\n", "pc,accel=tcg"],
    ["-accel tcg in args", "args: [-accel, tcg]\n", "tcg"],
    ["-machine accel= in arguments", "arguments:\n  - machine: pc\n    accel: tcg\n", "pc,accel=tcg"],
  ])(
    "the config's own accelerator (%s) starts: no second -accel, vm.started says tcg",
    async (label, yaml, word) => {
      const name = `own-${label.replace(/[^a-z]+/g, "")}`;
      const file = join(dir, `${name}.yaml`);
      await writeFile(file, `name: ${name}\nmemory: 32M\n${yaml}`);
      await maqet.add(file);
      try {
        await maqet.start(name, { timeoutMs: 20_000 });
        const started = (await maqet.history(name)).find((h) => h.type === "vm.started");
        const data = started?.data as { argv: string[]; accel: string };
        expect(data.accel).toBe("tcg");
        expect(data.argv.filter((w) => w === "-accel").length).toBe(word === "tcg" ? 1 : 0);
        expect(data.argv).toContain(word);
      } finally {
        await maqet.stop(name, { force: true });
      }
    },
    60_000,
  );

  it("enable-kvm: maqet adds no -accel; without usable KVM the error is QEMU's, with what to do", async () => {
    const file = join(dir, "kvm.yaml");
    await writeFile(file, "name: kvm\nmemory: 32M\narguments:\n  - enable-kvm\n");
    await maqet.add(file);
    const outcome = await maqet.start("kvm", { timeoutMs: 20_000 }).then(
      () => undefined,
      (e: unknown) => e,
    );
    const history = await maqet.history("kvm");
    if (!existsSync("/dev/kvm")) {
      // This host: no /dev/kvm. QEMU refuses; the caller reads QEMU's words and the way out.
      expect(isMaqetError(outcome, "START_FAILED")).toBe(true);
      const message = (outcome as Error).message;
      expect(message).toMatch(/qemu-system-x86_64: failed to initialize kvm/);
      expect(message).toContain("The config asks for KVM (enable-kvm in arguments)");
      expect(message).toContain("accel: tcg");
      const failed = history.find((h) => h.type === "vm.start-failed")?.data as { stderr?: string };
      expect(failed.stderr).toMatch(/failed to initialize kvm/);
      // Not the conflict maqet used to cause.
      expect(failed.stderr).not.toMatch(/incompatible/);
    } else if (outcome === undefined) {
      const started = history.find((h) => h.type === "vm.started")?.data as { argv: string[]; accel: string };
      expect(started.accel).toBe("kvm");
      expect(started.argv).not.toContain("-accel");
      await maqet.stop("kvm", { force: true });
    } else {
      expect((outcome as Error).message).not.toMatch(/incompatible/);
      expect((outcome as Error).message).toMatch(/kvm/i);
    }
  }, 60_000);

  it("accel: tcg with enable-kvm is refused at add (exit 3), naming both", async () => {
    const file = join(dir, "both.yaml");
    await writeFile(file, "name: both\naccel: tcg\narguments:\n  - enable-kvm\n");
    const error = await maqet.add(file).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(isMaqetError(error, "CONFIG_INVALID")).toBe(true);
    expect((error as Error).message).toContain("'accel: tcg' contradicts enable-kvm in arguments (kvm)");
  });
});
