/**
 * Property, on PGlite and PostgreSQL: for generated configs using every `arguments` form
 * (flags, `{k: null}`, scalars, multi-key mappings whose first key is positional, nested
 * mappings with positional bare words, deeper nesting, lists, lists under keys, booleans), and
 * virtfs/qemu-img option maps, the argv rendered from `parseVmConfig(yaml)` equals the argv
 * rendered after the config went through the real store (`vm.defined` appended, read back,
 * folded as a replay does) and through the VM list projection (rows, then a rebuild).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Document } from "yaml";
import { vmListProjection } from "../../src/actors/vm-list-projection.ts";
import { foldVmEvents } from "../../src/actors/vm-view.ts";
import { buildQemuArgv } from "../../src/adapters/qemu-argv.ts";
import { parseVmConfig } from "../../src/config/parse-vm-config.ts";
import { decodeStoredConfig } from "../../src/config/stored-config.ts";
import type { VmConfig } from "../../src/config/vm-config.ts";
import type { PostgresEventStore } from "../../src/events/postgres-event-store.ts";
import { ProjectionRunner } from "../../src/events/projections/projection-runner.ts";
import { vmEvent, vmStreamId } from "../../src/events/vm-events.ts";
import { catchUpFully } from "../support/projection-settle.ts";
import { openForSuite, type TestDatabase, testDatabases } from "../support/test-databases.ts";

const RUNS = 60;
const VM_ID = "0b5c3f8e-4a1d-4c7e-9f00-3c2d1e0f9a8b";
const argvOf = (config: VmConfig): string[] =>
  buildQemuArgv(
    config,
    { vmId: VM_ID, name: "p", qmpSocket: "/run/m/q.sock", pidFile: "/run/m/q.pid" },
    {
      kvmUsable: false,
    },
  );

// Names: lengths and letters vary so that jsonb's shortest-first order differs from the written one.
const name = fc.stringMatching(/^[a-z][a-z0-9-]{0,9}$/);
const scalar = fc.oneof(
  fc.stringMatching(/^[a-z0-9:./_-]{1,12}$/),
  fc.integer({ min: 0, max: 100_000 }),
  fc.boolean(),
  fc.constantFrom("on", "off", "yes", "1", "true"),
);
const { value } = fc.letrec<{ value: unknown; mapping: Record<string, unknown>; list: unknown[] }>((tie) => ({
  value: fc.oneof(
    { depthSize: "small", withCrossShrink: true },
    scalar,
    fc.constant(null),
    tie("list"),
    tie("mapping"),
  ),
  mapping: fc.dictionary(name, tie("value"), { minKeys: 1, maxKeys: 4 }),
  list: fc.array(fc.oneof(scalar, tie("mapping")), { minLength: 1, maxLength: 3 }),
}));
const item = fc.oneof(
  name, // flag: `- enable-kvm`
  name.map((n) => `-${n}`), // flag with its dash
  fc.dictionary(name, fc.constant(null), { minKeys: 1, maxKeys: 1 }), // `{k: null}`
  fc.dictionary(name, scalar, { minKeys: 1, maxKeys: 1 }), // `{k: v}`
  fc.dictionary(name, value, { minKeys: 2, maxKeys: 5 }), // first key positional
  fc.tuple(name, fc.dictionary(name, value, { minKeys: 1, maxKeys: 4 })).map(([k, v]) => ({ [k]: v })), // nested
  fc
    .tuple(name, name, fc.dictionary(name, value, { minKeys: 1, maxKeys: 3 }))
    .map(([k, bare, rest]) => ({ [k]: { [bare]: null, ...rest } })), // nested, bare word first
  fc.tuple(name, fc.array(scalar, { minLength: 1, maxLength: 3 })).map(([k, l]) => ({ [k]: l })), // list
);
const optionMap = fc.dictionary(fc.stringMatching(/^[a-z][a-z0-9_]{0,12}$/), fc.stringMatching(/^[a-z0-9]{1,6}$/), {
  minKeys: 0,
  maxKeys: 4,
});
const config = fc.record({
  arguments: fc.array(item, { minLength: 1, maxLength: 6 }),
  diskOptions: optionMap,
  shareOptions: optionMap,
});

function yamlOf(c: {
  arguments: unknown[];
  diskOptions: Record<string, string>;
  shareOptions: Record<string, string>;
}) {
  const storage: Record<string, unknown>[] = [{ name: "d0", type: "qcow2", size: "1G" }];
  if (Object.keys(c.diskOptions).length > 0) storage[0]!.options = c.diskOptions;
  const share = Object.fromEntries(
    Object.entries(c.shareOptions).filter(
      ([k]) => !["path", "local", "fsdriver", "id", "mount_tag", "security_model", "readonly"].includes(k),
    ),
  );
  storage.push({ name: "s0", type: "virtfs", path: "/srv/share", options: share });
  return new Document({ memory: "64M", storage, arguments: c.arguments }).toString();
}

describe.each(testDatabases())("render(parse(yaml)) == render(store → replay) on $name", (dialect) => {
  let t: TestDatabase;
  let store: PostgresEventStore;
  openForSuite(dialect, (opened) => ({ t, store } = opened));

  it(`${RUNS} generated configs with every arguments form`, async () => {
    const ids: string[] = [];
    const expected = new Map<string, string[]>();
    await fc.assert(
      fc.asyncProperty(config, async (c) => {
        const text = yamlOf(c);
        const parsed = parseVmConfig(text, { baseDir: "/srv/vms", source: "generated.yaml" });
        const vmId = crypto.randomUUID();
        await store.append(
          vmStreamId(vmId),
          [vmEvent("vm.defined", { vmId, name: `p-${vmId.slice(0, 8)}`, config: parsed })],
          { expectedVersion: "no_stream" },
        );
        const replayed = foldVmEvents(await store.readStream(vmStreamId(vmId)));
        expect(argvOf(replayed!.config), text).toEqual(argvOf(parsed));
        ids.push(vmId);
        expected.set(vmId, argvOf(parsed));
      }),
      { numRuns: RUNS, seed: 20261206, endOnFailure: true },
    );
    // The same configs through the VM list projection: caught up, then rebuilt from position 0.
    const runner = new ProjectionRunner({ db: t.db, store, projections: [vmListProjection] });
    for (const step of ["catch up", "rebuild"] as const) {
      // A rebuild stops at the watermark too; what a transaction elsewhere on the cluster held
      // back is applied by the catch-up after it.
      if (step === "rebuild") await runner.rebuild(vmListProjection.name);
      await catchUpFully(runner, vmListProjection.name, t.db);
      const rows = await t.db
        .selectFrom("maqet_vms" as never)
        .select(["vm_id" as never, "config" as never])
        .execute();
      const byId = new Map((rows as { vm_id: string; config: unknown }[]).map((r) => [r.vm_id, r.config]));
      for (const id of ids) {
        const stored = byId.get(id);
        expect(stored, `${step}: row of ${id}`).toBeDefined();
        const row = typeof stored === "string" ? JSON.parse(stored) : stored;
        expect(argvOf(decodeStoredConfig(row)), step).toEqual(expected.get(id));
      }
    }
  }, 300_000);
});
