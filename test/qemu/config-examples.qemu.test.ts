/**
 * Every YAML example in docs/ and examples/, from the user's text to QEMU: added through the
 * facade (embedded store), `inspect` (the argv a start would run, built from the config the store
 * replays) equals the argv `parseVmConfig` gives for the same text, the argv holds what the doc
 * says it becomes, and the VM starts (firmware only) with exactly that argv in `vm.started`.
 * Host paths the docs name (/srv/logs, /dev/shm, a base image) are moved into a temp directory;
 * `enable-kvm` is dropped on a host without /dev/kvm (it is tested in start-errors.qemu.test.ts).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runtimePaths } from "../../src/actors/runtime-paths.ts";
import { createHostInfo } from "../../src/adapters/host-info.ts";
import { buildQemuArgv } from "../../src/adapters/qemu-argv.ts";
import { parseVmConfig } from "../../src/config/parse-vm-config.ts";
import type { Maqet } from "../../src/mod.ts";
import { projectRoot } from "../support/build-dist.ts";
import { maqetForSuite } from "../support/library-maqet.ts";

interface Example {
  label: string;
  text: string;
  /** Words (or consecutive word pairs) the doc says the argv contains (a word may be a word's end). */
  implies: string[][];
}

/**
 * What each doc's text says its example becomes, keyed by a line that identifies the example
 * (block numbers shift when a doc gains an example).
 */
const IMPLIED: Record<string, string[][]> = {
  "- {name: hdd, type: qcow2, size: 20G}\narguments:": [
    ["-accel", "tcg"],
    ["-m", "1G"],
    ["-smp", "2"],
    ["-display", "none"],
    ["-netdev", "user,id=n0"],
    ["-device", "driver=virtio-net-pci,netdev=n0"],
  ],
  "arguments:\n  - enable-kvm\n  - nographic: null": [
    ["-nographic"],
    ["-smp", "2"],
    ["-netdev", "user,id=n0,hostfwd=tcp::2222-:22"],
    ["-device", "driver=virtio-net-pci,netdev=n0"],
    ["-object", "rng-random,id=rng0,filename=/dev/urandom"],
    ["-device", "driver=virtio-rng-pci,rng=rng0"],
    ["-boot", "order=c,menu=off"],
  ],
  "name: full-example": [
    ["-no-reboot"],
    ["-enable-sync-profile"],
    ["-rtc", "base=utc"],
    ["-netdev", "user,id=net0,hostfwd=tcp::2222-:22"],
    ["-device", "driver=virtio-net-pci,netdev=net0"],
    ["-object", "rng-random,id=rng0,filename=/dev/urandom"],
    ["-boot", "order=c,menu=off"],
    ["-machine", "q35"],
    ["-d", "guest_errors"],
  ],
  "name: demo\n": [
    ["-m", "64M"],
    ["-machine", "q35"],
  ],
  "media: cdrom}": [["-drive", "format=raw,id=install,media=cdrom,readonly=on"]],
  "name: logs\n    type: virtfs": [["-drive", "format=raw,id=scratch"]],
};

const impliedBy = (text: string): string[][] =>
  Object.entries(IMPLIED).flatMap(([marker, words]) => (text.includes(marker) ? words : []));

function collectExamples(): Example[] {
  const out: Example[] = [];
  for (const file of readdirSync(join(projectRoot, "examples")).filter((f) => f.endsWith(".yaml"))) {
    const label = `examples/${file}`;
    const text = readFileSync(join(projectRoot, "examples", file), "utf8");
    out.push({ label, text, implies: impliedBy(text) });
  }
  for (const file of readdirSync(join(projectRoot, "docs")).filter((f) => f.endsWith(".md"))) {
    const blocks = readFileSync(join(projectRoot, "docs", file), "utf8").matchAll(/```yaml\n([\s\S]*?)```/g);
    let n = 0;
    for (const [, text] of blocks) {
      const label = `docs/${file} #${++n}`;
      out.push({ label, text: text as string, implies: impliedBy(text as string) });
    }
  }
  return out;
}

/**
 * The plan with the host ports a run chose: a `0` host port of `ports:` (`hostfwd=tcp:IP:0-:22`)
 * is picked free at start, so the run's word has a port there; every other word must be equal.
 */
function withChosenPorts(planned: readonly string[], run: readonly string[]): string[] {
  return planned.map((word, j) => {
    if (!word.includes(":0-")) return word;
    const escaped = word.replace(/[.*+?^${}()|[\]\\]/g, "\\$&").replaceAll(":0-", ":[1-9]\\d*-");
    return new RegExp(`^${escaped}$`).test(run[j] ?? "") ? run[j]! : word;
  });
}

const examples = collectExamples();
const noKvm = !existsSync("/dev/kvm");

describe("every YAML example in docs/ and examples/ through the store to QEMU", () => {
  let dir: string;
  let maqet: Maqet;
  maqetForSuite("maqet-examples-", (s) => ({ dir, maqet } = s));

  it("finds the examples (docs/config.md, storage.md, security.md, examples/*.yaml), each described", () => {
    expect(examples.map((e) => e.label)).toEqual(expect.arrayContaining(["examples/full.yaml", "examples/demo.yaml"]));
    expect(examples.length).toBeGreaterThanOrEqual(7);
    // Every marker of IMPLIED names an example that exists (a renamed example fails here).
    for (const marker of Object.keys(IMPLIED))
      expect(
        examples.some((e) => e.text.includes(marker)),
        marker,
      ).toBe(true);
  });

  it.each(examples.map((e, i) => [e.label, e, i] as const))(
    "%s",
    async (_label, example, i) => {
      const home = join(dir, `ex${i}`);
      await mkdir(join(home, "src"), { recursive: true });
      await mkdir(join(home, "logs"), { recursive: true });
      await mkdir(join(home, "images"), { recursive: true });
      execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", join(home, "images", "debian-base.qcow2"), "64M"]);
      // An ISO a CD-ROM example names: an empty 1 MiB image is enough for the firmware.
      for (const [, iso] of example.text.matchAll(/file: ([\w./-]+\.iso)/g)) {
        await writeFile(join(home, iso as string), Buffer.alloc(1024 * 1024));
      }
      let text = example.text
        .replaceAll("/srv/logs", join(home, "logs"))
        .replaceAll("/dev/shm/", `${home}/`)
        .replace(/^name: .*$/m, "");
      if (noKvm) text = text.replace(/^\s*- enable-kvm\s*$/m, "");
      const file = join(home, "vm.yaml");
      await writeFile(file, text);
      const name = `ex${i}`;
      const added = await maqet.add(file, { name });
      const parsed = parseVmConfig(text, { source: file, baseDir: home, nameOverride: name });
      const paths = { vmId: added.id, name, ...runtimePaths(join(dir, "run", added.id)) };

      const planned = await maqet.inspect(name);
      expect(planned.source).toBe("next-start");
      // The host's fact, as the start decides it: `accel: auto` is kvm where /dev/kvm is usable.
      const kvmUsable = parsed.accel === "tcg" ? false : await createHostInfo().kvmUsable();
      expect(planned.argv).toEqual(buildQemuArgv(parsed, paths, { kvmUsable }));
      for (const words of example.implies) {
        // A word matches when the argv word is it or ends with it (a drive's path comes first).
        const at = planned.argv.findIndex((_, j) => words.every((w, k) => planned.argv[j + k]?.endsWith(w)));
        expect(at, `${words.join(" ")} in ${planned.command}`).toBeGreaterThanOrEqual(0);
      }

      await maqet.start(name, { timeoutMs: 30_000 });
      try {
        const started = (await maqet.history(name)).find((h) => h.type === "vm.started")?.data as { argv: string[] };
        expect(started.argv).toEqual(withChosenPorts(planned.argv, started.argv));
        const running = await maqet.inspect(name);
        expect(running).toMatchObject({ source: "running", argv: started.argv });
      } finally {
        await maqet.stop(name, { force: true });
      }
    },
    90_000,
  );
});
