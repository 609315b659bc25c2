/**
 * One event, one set of field names: `history --json` has one shape with or without a point
 * (--version/--at), its entries use the names `events --json` uses, the library's `history()`
 * returns exactly those entries, and the library's stored events (`events$`, `subscribe()`)
 * map onto them by the table in docs/events.md — checked here field by field, on the embedded
 * store, through the CLI as a user runs it (in-process `runCli`) and the library.
 */
import { readFileSync } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { firstValueFrom, toArray } from "rxjs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { EventLine } from "../../src/api/commands/events-commands.ts";
import type { HistoryEntry } from "../../src/api/history-entry.ts";
import { createMaqet } from "../../src/api/maqet.ts";
import type { EventsMessage } from "../../src/api/ops/events-ops.ts";
import { runCli } from "../../src/cli/main.ts";
import type { StoredEvent } from "../../src/events/envelope.ts";

/** docs/events.md "Field names": the library's StoredEvent → the CLI's / agent's JSON names. */
const LIBRARY_TO_JSON: Record<string, (e: StoredEvent) => unknown> = {
  position: (e) => e.globalPosition,
  version: (e) => e.streamVersion,
  at: (e) => e.recordedAt.toISOString(),
  type: (e) => e.type,
  schemaVersion: (e) => e.schemaVersion,
  id: (e) => e.id,
  data: (e) => e.data,
  actor: (e) => e.metadata?.actor ?? null,
  correlationId: (e) => e.metadata?.correlationId ?? null,
  source: (e) => e.metadata?.source ?? null,
};
const LIBRARY_NAMES: Record<string, string> = {
  position: "globalPosition",
  version: "streamVersion",
  at: "recordedAt",
  actor: "metadata.actor",
  correlationId: "metadata.correlationId",
  source: "metadata.source",
};

describe("event JSON shapes: history, events, the library", { timeout: 120_000 }, () => {
  let dir: string;
  let libHistory: HistoryEntry[];
  let libEvents: StoredEvent[];
  const cli = async (...args: string[]) => {
    let stdout = "";
    let stderr = "";
    const code = await runCli(["--data-dir", join(dir, "data"), "--runtime-dir", join(dir, "run"), ...args], {
      env: { PATH: process.env.PATH, HOME: dir },
      stdout: (t) => {
        stdout += `${t}\n`;
      },
      stderr: (t) => {
        stderr += `${t}\n`;
      },
    });
    expect(code, stderr).toBe(0);
    return stdout;
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "maqet-shapes-"));
    const maqet = createMaqet({ dataDir: join(dir, "data"), runtimeDir: join(dir, "run"), env: {} });
    try {
      await maqet.add({ name: "a", accel: "tcg", memory: "64M" });
      await maqet.add({ name: "b", accel: "tcg", memory: "64M" });
      await maqet.apply("a", { overrides: { memory: "96M" }, reason: "more room" });
      libHistory = await maqet.history("a");
      const messages = await firstValueFrom(maqet.subscribe({ follow: false }).pipe(toArray()));
      libEvents = messages
        .filter((m): m is Extract<EventsMessage, { kind: "event" }> => m.kind === "event")
        .map((m) => m.event);
    } finally {
      await maqet.close();
    }
  }, 120_000);
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it("history --json is one shape with and without --version / --at", async () => {
    const all = JSON.parse(await cli("history", "a", "--json"));
    const v0 = JSON.parse(await cli("history", "a", "--version", "0", "--json"));
    const at = JSON.parse(await cli("history", "a", "--at", libHistory[0]!.at, "--json"));
    for (const shape of [all, v0, at]) {
      expect(Object.keys(shape).sort()).toEqual(["config", "events", "point", "state", "version", "vm"]);
      expect(Object.keys(shape.events[0]).sort()).toEqual(Object.keys(libHistory[0]!).sort());
    }
    expect(all.point).toEqual({ at: null, version: null });
    expect(all.events).toEqual(libHistory); // the library's history() is the CLI's, entry for entry
    expect(all.version).toBe(libHistory.at(-1)!.version);
    expect(all.state.memory).toBe("96M"); // the state now
    expect(v0.point).toEqual({ at: null, version: 0 });
    expect(v0.events).toEqual(libHistory.slice(0, 1));
    expect(v0.state.memory).toBe("64M"); // the state then
    expect(at.events).toEqual(v0.events);
  });

  it("an event has the same field names and values in history --json and events --json", async () => {
    const lines = (await cli("events", "--json"))
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as EventLine);
    const history = JSON.parse(await cli("history", "a", "--json")).events as HistoryEntry[];
    expect(history.length).toBeGreaterThan(1);
    for (const entry of history) {
      const line = lines.find((l) => l.id === entry.id)!;
      expect(line, entry.type).toBeDefined();
      // events adds where the event lives and where to resume; every other field is history's.
      expect(Object.keys(line).sort()).toEqual([...Object.keys(entry), "checkpoint", "streamId", "vm"].sort());
      for (const [key, value] of Object.entries(entry)) expect(line[key as keyof EventLine], key).toEqual(value);
      expect(line.vm).toBe("a");
    }
  });

  it("the library's stored events map onto those names by docs/events.md's table", async () => {
    const doc = readFileSync(join(import.meta.dirname, "../../docs/events.md"), "utf8");
    for (const [json, library] of Object.entries(LIBRARY_NAMES)) {
      const rows = doc.split("\n").filter((line) => line.startsWith(`| \`${library}\``));
      const mapped = rows.some((row) => new RegExp(`^\\| \`${library}\`[^|]*\\| \`${json}\``).test(row));
      expect(mapped, `docs/events.md maps ${library} → ${json}`).toBe(true);
    }
    const lines = (await cli("events", "--json"))
      .split("\n")
      .filter((l) => l !== "")
      .map((l) => JSON.parse(l) as EventLine);
    expect(libEvents.length).toBe(lines.length);
    for (const event of libEvents) {
      const line = lines.find((l) => l.id === event.id)!;
      for (const [key, read] of Object.entries(LIBRARY_TO_JSON)) {
        expect(line[key as keyof EventLine], `${event.type}.${key}`).toEqual(read(event));
      }
      expect(line.streamId).toBe(event.streamId);
    }
  });
});
