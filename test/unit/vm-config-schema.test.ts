/**
 * The VM config's JSON Schema against the parser: the same top-level keys, the same storage
 * keys (read from the parser's own "valid keys" refusal), the shipped file equal to what
 * `maqet schema` prints, and the documented examples valid under it.
 */
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { vmConfigSchema } from "../../src/api/vm-config-schema.ts";
import { runCli } from "../../src/cli/main.ts";
import { IGNORED_MAQET_KEYS, parseVmConfig, VM_CONFIG_KEYS } from "../../src/config/parse-vm-config.ts";

const root = join(import.meta.dirname, "../..");
const schema = vmConfigSchema();
type Entry = { properties: Record<string, { enum?: string[] }> };
const [disk, virtfs] = schema.properties.storage!.items!.oneOf as unknown as [Entry, Entry];

/** The keys the parser lists when it refuses an unknown one in a storage entry. */
function parserStorageKeys(entry: Record<string, unknown>): string[] {
  try {
    parseVmConfig(JSON.stringify({ storage: [{ ...entry, zz_not_a_key: 1 }] }), { baseDir: "/tmp" });
  } catch (error) {
    const listed = /Valid keys for a \w+ storage entry: ([^.]+)\./.exec((error as Error).message);
    if (listed) return listed[1]!.split(", ").sort();
    throw error;
  }
  throw new Error("the parser accepted an unknown storage key");
}

describe("VM config JSON Schema", () => {
  it("has exactly the parser's top-level keys", () => {
    expect(Object.keys(schema.properties).sort()).toEqual([...VM_CONFIG_KEYS, ...IGNORED_MAQET_KEYS].sort());
    expect(schema.additionalProperties).toBe(false);
  });

  it("has exactly the parser's disk and virtfs storage keys", () => {
    expect(Object.keys(disk.properties).sort()).toEqual(parserStorageKeys({ type: "qcow2" }));
    expect(Object.keys(virtfs.properties).sort()).toEqual(parserStorageKeys({ type: "virtfs", path: "/srv" }));
  });

  it("the enums match what the parser accepts", () => {
    for (const accel of schema.properties.accel!.enum!) {
      expect(parseVmConfig(`accel: ${accel}\n`, { baseDir: "/tmp" }).accel).toBe(accel);
    }
    expect(() => parseVmConfig("accel: hvf\n", { baseDir: "/tmp" })).toThrow(/accel/);
    for (const iface of disk.properties.interface!.enum!) {
      const config = parseVmConfig(`storage: [{type: qcow2, size: 1G, interface: ${iface}}]\n`, { baseDir: "/tmp" });
      expect(config.storage[0]!.interface).toBe(iface);
    }
  });

  it("the shipped schema/vm-config.schema.json is what `maqet schema` prints (regenerate with `maqet schema`)", async () => {
    const out: string[] = [];
    const code = await runCli(["schema"], { env: {}, stdout: (t) => out.push(t), stderr: () => {} });
    expect(code).toBe(0);
    const shipped = JSON.parse(readFileSync(join(root, "schema/vm-config.schema.json"), "utf8"));
    expect(JSON.parse(out.join("\n"))).toEqual(shipped);
    expect(shipped).toEqual(schema);
    const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { files: string[] };
    expect(pkg.files).toContain("schema");
  });

  it("every example config uses only keys the schema knows", () => {
    const examples = readdirSync(join(root, "examples")).filter((f) => f.endsWith(".yaml"));
    expect(examples.length).toBeGreaterThan(0);
    for (const file of examples) {
      const config = parse(readFileSync(join(root, "examples", file), "utf8")) ?? {};
      for (const key of Object.keys(config)) expect(Object.keys(schema.properties), `${file}: ${key}`).toContain(key);
    }
  });
});
