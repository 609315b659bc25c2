/**
 * The CLI at a real terminal (tmux) and through pipes, with real QEMU: long waits say what they
 * wait for (a live line on a terminal, plain lines otherwise), Ctrl-C says what it leaves running
 * and exits 130 with the store consistent, colour appears on a terminal only (NO_COLOR,
 * --color). Issue #11, "A CLI that helps".
 */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { projectRoot } from "../support/build-dist.ts";
import { AGENT_MODE, type CliSandbox, createCliSandbox, processAlive, waitFor } from "../support/cli-runner.ts";
import { openPane, type Pane, plain, tmuxMissing } from "../support/tmux.ts";

const bin = join(projectRoot, "dist/src/cli/bin.js");
const ESC = "\x1b[";
const noTmux = tmuxMissing();
if (noTmux) console.warn(`skipping the terminal half of cli-terminal.qemu.test.ts: ${noTmux}`);

const firmwareVm = (name: string) => `name: ${name}\nbinary: /usr/bin/qemu-system-x86_64\naccel: tcg\nmemory: 64M\n`;

/** A shell command line running the built CLI with `args` (single-quoted). */
const maqet = (args: string[], prefix = "") =>
  `${prefix}${process.execPath} ${bin} ${args.map((a) => `'${a.replaceAll("'", `'\\''`)}'`).join(" ")}`;

interface Status {
  state: string;
  pid: number | null;
}

describe("maqet at a terminal and through pipes (real QEMU)", { timeout: 300_000 }, () => {
  let box: CliSandbox;
  const panes: Pane[] = [];
  const pane = async (command: string) => {
    const p = await openPane(command, { env: box.env, cwd: box.home });
    panes.push(p);
    return p;
  };
  beforeAll(async () => {
    box = await createCliSandbox();
    await writeFile(join(box.home, "web.yaml"), firmwareVm("web"));
    expect((await box.run(["add", "web.yaml"])).code).toBe(0);
  }, 300_000);
  afterAll(async () => {
    for (const p of panes) await p.close();
    await box.run(["stop", "web", "--force"]);
    await box.cleanup();
  });

  it("piped: no escape codes in ls/status/errors unless --color always or FORCE_COLOR", async () => {
    const ls = await box.run(["ls"]);
    expect(ls.code).toBe(0);
    expect(ls.stdout).toContain("web");
    expect(ls.stdout).not.toContain(ESC);
    const missing = await box.run(["status", "nope"]);
    expect(missing.code).toBe(3);
    expect(missing.stderr).not.toContain(ESC);
    const always = await box.run(["--color", "always", "ls"]);
    expect(always.stdout).toContain(ESC);
    expect(plain(always.stdout)).toBe(ls.stdout);
    expect((await box.run(["ls"], { FORCE_COLOR: "1" })).stdout).toContain(ESC);
    // An explicit --color never wins over FORCE_COLOR; a bad value is invalid input.
    expect((await box.run(["--color", "never", "ls"], { FORCE_COLOR: "1" })).stdout).not.toContain(ESC);
    const bad = await box.run(["--color", "sometimes", "ls"]);
    expect(bad.code).toBe(3);
    expect(bad.stderr).toContain("--color must be one of auto, always, never");
  });

  it("piped: a graceful stop says each step and how long it waits, as plain lines on stderr", async () => {
    expect((await box.run(["start", "web"])).code).toBe(0);
    const stop = await box.run(["stop", "web", "--timeout", "2"]);
    expect(stop.code).toBe(0);
    // A firmware-only guest ignores ACPI: after 2 s the stop escalates to QMP quit.
    expect(stop.stderr).toContain(
      "maqet: stopping VM 'web': ACPI powerdown sent, waiting up to 2s for the guest to power off\n",
    );
    expect(stop.stderr).toMatch(
      /maqet: stopping VM 'web': the guest did not power off; QMP quit sent, waiting up to 3s\n/,
    );
    expect(stop.stderr).not.toContain(ESC);
    expect(stop.stdout).toMatch(/Stopped VM 'web' \(destroyed via quit\)/);
    // With --json nothing but the result.
    expect((await box.run(["start", "web"])).code).toBe(0);
    const quiet = await box.run(["stop", "web", "--timeout", "2", "--json"]);
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe("");
  });

  it.skipIf(noTmux)("at a terminal: ls is coloured; NO_COLOR and --color never turn it off", async () => {
    const p = await pane(
      [
        maqet(["ls"]),
        "echo MARK-A",
        maqet(["ls"], "NO_COLOR=1 "),
        "echo MARK-B",
        maqet(["--color", "never", "ls"]),
      ].join("; "),
    );
    const screen = await p.waitFor(/EXIT=0/);
    const [coloured, noColor, never] = screen.split(/MARK-A|MARK-B/);
    expect(plain(coloured!)).toMatch(/web\s+stopped/);
    expect(coloured).toContain(ESC);
    expect(plain(noColor!)).toMatch(/web\s+stopped/);
    // The rows of the uncoloured tables (the first line is the echoed marker's rest).
    const rows = (text: string) => text.split("\n").filter((line) => line.includes("web"));
    expect(rows(noColor!).length).toBeGreaterThan(0);
    for (const row of [...rows(noColor!), ...rows(never!)]) expect(row).not.toContain(ESC);
  });

  it.skipIf(noTmux)(
    "at a terminal: --wait-for shows a live line; Ctrl-C says the VM is still running (pid) and exits 130",
    async () => {
      const p = await pane(maqet(["start", "web", "--wait-for", "serial:never-printed", "--timeout", "60"]));
      const live = plain(await p.waitFor(/waiting up to \d+s for serial output matching \/never-printed\//));
      expect(live).toMatch(/maqet: starting VM 'web': QEMU is up \(pid \d+\), waiting up to \d+s/);
      await p.sendKeys("C-c");
      const screen = plain(await p.waitFor(/EXIT=\d+/));
      expect(screen).toContain("EXIT=130");
      const status = (await box.run(["status", "web", "--json"])).json<Status>();
      expect(status.state).toBe("running");
      expect(await processAlive(status.pid!)).toBe(true);
      if (AGENT_MODE) {
        expect(screen).toContain("maqet: interrupted: the agent carries on with `maqet start web`");
      } else {
        expect(screen).toContain(
          `maqet: interrupted: the start of VM 'web' was not finished; VM 'web' is still running (pid ${status.pid}). Stop it with \`maqet stop web\`.`,
        );
      }
      // The store is consistent: the history reads, and the VM stops normally.
      const history = await box.run(["history", "web", "--json"]);
      expect(history.code).toBe(0);
      expect(history.json<{ events: Array<{ type: string }> }>().events.map((e) => e.type)).toContain("vm.started");
    },
  );

  it.skipIf(noTmux)(
    "at a terminal: a graceful stop shows its step live; Ctrl-C names the step, leaves QEMU running, exits 130",
    async () => {
      const before = (await box.run(["status", "web", "--json"])).json<Status>();
      if (before.state !== "running") expect((await box.run(["start", "web"])).code).toBe(0);
      const { pid } = (await box.run(["status", "web", "--json"])).json<Status>();
      const p = await pane(maqet(["stop", "web", "--timeout", "60"]));
      const live = await p.waitFor(/ACPI powerdown sent, waiting up to 60s for the guest to power off[^\n]*\(\d+s\)/);
      expect(live).toContain(ESC); // the live line is dimmed on a terminal
      await p.sendKeys("C-c");
      const screen = plain(await p.waitFor(/EXIT=\d+/));
      expect(screen).toContain("EXIT=130");
      expect(await processAlive(pid!)).toBe(true);
      if (AGENT_MODE) {
        expect(screen).toContain("the agent carries on with `maqet stop web`");
      } else {
        expect(screen).toContain(
          `maqet: interrupted: the stop of VM 'web' was not finished at step powerdown; VM 'web' is still running (pid ${pid})`,
        );
      }
      // The next command finds the truth and can finish the job.
      const stop = await box.run(["stop", "web", "--force"]);
      expect(stop.code).toBe(0);
      expect(await waitFor(async () => !(await processAlive(pid!)), 10_000)).toBe(true);
      expect((await box.run(["status", "web", "--json"])).json<Status>().state).toBe("stopped");
    },
  );
});
