/**
 * `maqet apply` and `maqet edit` as a user runs them (built CLI, fresh HOME, real QEMU firmware
 * VM, embedded store): the VM keeps its id and its one stream, `vm.reconfigured` is in its
 * history and the audit trail, `history --at` before the change shows the old config, a running
 * VM is refused unless `--restart`, and `--restart` runs QEMU with the new config.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, inject, it } from "vitest";
import { decodeStoredConfig } from "../../src/config/stored-config.ts";
import { type CliSandbox, createCliSandbox, processAlive } from "../support/cli-runner.ts";
import { createTestDatabase } from "../support/postgres-cluster.ts";

interface Status {
  name: string;
  id: string;
  state: string;
  pid: number | null;
  memory: string | null;
  version: number;
}
interface Entry {
  version: number;
  type: string;
  at: string;
  data: Record<string, unknown>;
}

describe("maqet apply / edit (real QEMU, built CLI)", { timeout: 900_000 }, () => {
  let box: CliSandbox;
  let db: { url: string; drop(): Promise<void> } | undefined;
  beforeAll(async () => {
    box = await createCliSandbox();
    // Each CLI call is a process; on a busy box the embedded store costs tens of seconds to open,
    // a server database a fraction. MAQET_CORPUS_STORE=embedded runs these on the embedded store.
    if (process.env.MAQET_CORPUS_STORE !== "embedded") {
      db = await createTestDatabase(inject("databaseUrl"));
      box.env.MAQET_DATABASE_URL = db.url;
    }
    await writeFile(
      join(box.home, "web.yaml"),
      "name: web\nbinary: /usr/bin/qemu-system-x86_64\naccel: tcg\nmemory: 64M\narguments:\n  - smp: 1\n",
    );
    await writeFile(join(box.home, "bigger.yaml"), "arguments:\n  - smp: 2\n");
  }, 300_000);
  afterAll(async () => {
    await box.run(["stop", "web", "--force"]);
    await db?.drop();
    await box.cleanup();
  }, 300_000);

  it("apply on a stopped VM: same id, one stream, vm.reconfigured in history and audit; history --at shows the old config", async () => {
    expect((await box.run(["add", "web.yaml"])).code).toBe(0);
    const before = (await box.run(["status", "web", "--json"])).json<Status>();

    const apply = await box.run(["apply", "web", "bigger.yaml", "--memory", "96M", "--reason", "more room", "--json"]);
    expect(apply.stderr).toBe("");
    expect(apply.code).toBe(0);
    expect(apply.json<{ changed: string[] }>().changed).toEqual(["arguments", "memory"]);

    const after = (await box.run(["status", "web", "--json"])).json<Status>();
    expect(after.id).toBe(before.id);
    expect(after.memory).toBe("96M");

    const history = (await box.run(["history", "web", "--json"])).json<{ events: Entry[] }>().events;
    expect(history.map((e) => e.version)).toEqual(history.map((_, i) => i)); // one gapless stream
    expect(history.map((e) => e.type)).toEqual(["vm.defined", "vm.reconfigured"]);
    const change = history[1]!.data;
    expect(change).toMatchObject({ via: "apply", reason: "more room", changed: ["arguments", "memory"] });
    // history prints the configs as stored (ordered pairs, docs/events.md); decoded, they say:
    expect(decodeStoredConfig(change.before as never).memory).toBe("64M");
    expect(decodeStoredConfig(change.after as never).arguments).toEqual([{ smp: 2 }]);
    expect(change.configPaths).toEqual([join(box.home, "bigger.yaml")]);

    const audit = (await box.run(["audit", "--vm", "web", "--json"])).json<
      Array<{ operation: string; vmId: string; detail: string; user: string | null }>
    >();
    const entry = audit.find((a) => a.operation === "vm.reconfigured");
    expect(entry).toMatchObject({ vmId: before.id, detail: "more room" });
    expect(entry?.user).toBeTruthy();

    const at = await box.run(["history", "web", "--at", history[0]!.at, "--json"]);
    expect(at.code).toBe(0);
    const old = at.json<{ state: Status; config: { memory: string; arguments: unknown[] } }>();
    expect(old.state.memory).toBe("64M");
    expect(old.config.arguments).toEqual([{ smp: 1 }]);
    const text = await box.run(["history", "web", "--at", history[0]!.at]);
    expect(text.stdout).toMatch(/memory:\s+64M/);

    // Nothing new: nothing recorded.
    const again = await box.run(["apply", "web", "bigger.yaml", "--memory", "96M", "--json"]);
    expect(again.json<{ changed: string[] }>().changed).toEqual([]);
    expect((await box.run(["history", "web", "--json"])).json<{ events: Entry[] }>().events).toHaveLength(2);
  });

  it("edit opens $EDITOR on the YAML (argv split, no shell) and applies what is saved, on the same stream", async () => {
    const editor = `sed -i -e "s/^memory: .*/memory: 80M/"`;
    const edit = await box.run(["edit", "web", "--json"], { EDITOR: editor });
    expect(edit.stderr).toBe("");
    expect(edit.code).toBe(0);
    expect(edit.json<{ changed: string[] }>().changed).toEqual(["memory"]);
    const history = (await box.run(["history", "web", "--json"])).json<{ events: Entry[] }>().events;
    expect(history.at(-1)).toMatchObject({ type: "vm.reconfigured", data: { via: "edit", changed: ["memory"] } });
    expect((await box.run(["status", "web", "--json"])).json<Status>().memory).toBe("80M");

    // An editor that fails applies nothing.
    const failed = await box.run(["edit", "web"], { EDITOR: "false" });
    expect(failed.code).toBe(3);
    expect(failed.stderr).toMatch(/editor \(false\) failed/);
    // An invalid edit is refused and kept for the user.
    const broken = await box.run(["edit", "web"], { EDITOR: `sed -i -e "s/^memory: .*/memory: lots/"` });
    expect(broken.code).toBe(3);
    const kept = /kept in (\S+)\./.exec(broken.stderr)?.[1];
    expect(kept).toBeDefined();
    expect(await readFile(kept!, "utf8")).toMatch(/memory: lots/);
    expect((await box.run(["history", "web", "--json"])).json<{ events: Entry[] }>().events).toHaveLength(
      history.length,
    );
  });

  it("a running VM is refused with a clear message; --restart stops, applies and starts QEMU with the new config", async () => {
    expect((await box.run(["start", "web"])).code).toBe(0);
    const running = (await box.run(["status", "web", "--json"])).json<Status>();

    const refused = await box.run(["apply", "web", "--memory", "112M"]);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toMatch(/Cannot change the config of VM 'web': it is running.*maqet stop web.*--restart/);
    const refusedEdit = await box.run(["edit", "web"], { EDITOR: "true" });
    expect(refusedEdit.code).toBe(1);
    expect(refusedEdit.stderr).toMatch(/Cannot edit the config of VM 'web': it is running/);

    const restart = await box.run(["apply", "web", "--memory", "112M", "--restart", "--timeout", "1", "--json"]);
    expect(restart.stderr).toBe("");
    expect(restart.code).toBe(0);
    expect(restart.json<{ restarted: boolean; changed: string[] }>()).toMatchObject({
      restarted: true,
      changed: ["memory"],
    });
    const now = (await box.run(["status", "web", "--json"])).json<Status>();
    expect(now).toMatchObject({ id: running.id, state: "running", memory: "112M" });
    expect(now.pid).not.toBe(running.pid);
    expect(await processAlive(now.pid!)).toBe(true);
    const cmdline = (await readFile(`/proc/${now.pid}/cmdline`, "utf8")).split("\0");
    expect(cmdline[cmdline.indexOf("-m") + 1]).toBe("112M");
    const types = (await box.run(["history", "web", "--json"])).json<{ events: Entry[] }>().events.map((e) => e.type);
    const i = types.lastIndexOf("vm.reconfigured");
    expect(types.slice(i - 1, i + 3)).toEqual(["vm.stopped", "vm.reconfigured", "vm.start-requested", "vm.started"]);
  });
});
