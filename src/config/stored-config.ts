/**
 * The stored form of a {@link VmConfig}: what `vm.defined` (schema 2) and the VM list's `config`
 * column hold. PostgreSQL `jsonb` does not keep object key order (it sorts keys shortest first),
 * and MAQET's `arguments` give the first key of a mapping a meaning (`- netdev: user` / `id: n0`
 * is `-netdev user,id=n0`; reordered it is `-id n0,netdev=user`). So every mapping whose key
 * order reaches QEMU's argv is stored as an explicit list of `[key, value]` pairs, which no JSON
 * store reorders:
 *
 * - each mapping inside `arguments`, at any depth, becomes `{"pairs": [[key, value], ...]}`
 *   (lists stay lists, scalars and null stay as they are);
 * - `storage[i].options` (qemu-img `-o`) and `shares[i].extra` (`-virtfs` options) become
 *   `[[key, value], ...]`;
 * - the stored config carries `"$ordered": 1`, so a reader tells it from a config written before
 *   (schema 1 events, old projection rows), whose key order may be lost.
 *
 * Decoding a legacy config keeps it as it was read (the argv it gave before), and lists in
 * {@link VmConfig.argumentOrderLost} the `arguments` mappings whose order mattered, so a start
 * warns and a refused start says why (never a silent wrong argv). docs/events.md explains the
 * choice.
 *
 * @example
 * ```ts
 * const stored = encodeStoredConfig({ accel: "auto", args: [], storage: [], arguments: [{ netdev: "user", id: "n0" }] });
 * stored.arguments; // [{ pairs: [["netdev", "user"], ["id", "n0"]] }]
 * decodeStoredConfig(JSON.parse(JSON.stringify(stored))).arguments; // [{ netdev: "user", id: "n0" }]
 * ```
 */
import type { ArgumentItem, DiskDevice, VirtfsShare, VmConfig } from "./vm-config.ts";

/** A value inside a stored `arguments` item: mappings as ordered pairs. */
export type StoredArgumentValue =
  | string
  | number
  | boolean
  | null
  | StoredArgumentValue[]
  | { pairs: [string, StoredArgumentValue][] };

export type StoredArgumentItem = string | { pairs: [string, StoredArgumentValue][] };

type Scalar = string | number | boolean;

/** The JSON a store keeps for a config (see the module comment). */
export type StoredVmConfig = Omit<VmConfig, "arguments" | "storage" | "shares" | "argumentOrderLost"> & {
  $ordered: 1;
  arguments: StoredArgumentItem[];
  storage: (Omit<DiskDevice, "options"> & { options?: [string, Scalar][] })[];
  shares?: (Omit<VirtfsShare, "extra"> & { extra?: [string, string][] })[];
};

/**
 * The config as stored: order-bearing mappings as pairs, marked `$ordered`.
 *
 * @example
 * ```ts
 * encodeStoredConfig(config).$ordered; // 1
 * ```
 */
export function encodeStoredConfig(config: VmConfig): StoredVmConfig {
  const { argumentOrderLost: _lost, arguments: items, storage, shares, ...rest } = config;
  const stored: StoredVmConfig = {
    $ordered: 1,
    ...rest,
    arguments: items.map((item) =>
      typeof item === "string" ? item : (encodeValue(item) as { pairs: [string, StoredArgumentValue][] }),
    ),
    storage: storage.map(({ options, ...disk }) =>
      options === undefined ? disk : { ...disk, options: Object.entries(options) },
    ),
  };
  if (shares !== undefined) {
    stored.shares = shares.map(({ extra, ...share }) =>
      extra === undefined ? share : { ...share, extra: Object.entries(extra) },
    );
  }
  return stored;
}

/**
 * A stored config back to a {@link VmConfig}. A config without `$ordered` (a schema 1 event, an
 * old projection row) is returned as read, with `argumentOrderLost` naming the `arguments`
 * mappings whose key order changes the argv (a mapping item with several keys; a nested mapping
 * with several keys one of which is a bare word).
 *
 * @example
 * ```ts
 * decodeStoredConfig({ accel: "auto", args: [], storage: [], arguments: [{ id: "n0", netdev: "user" }] })
 *   .argumentOrderLost; // ["arguments[0]"]
 * ```
 */
export function decodeStoredConfig(value: unknown): VmConfig {
  const stored = value as Partial<StoredVmConfig> & Record<string, unknown>;
  if (stored.$ordered !== 1) return flagLegacy(value as VmConfig);
  const { $ordered: _marker, arguments: items, storage, shares, ...rest } = stored;
  const config: VmConfig = {
    ...(rest as Omit<VmConfig, "arguments" | "storage" | "shares">),
    arguments: (items ?? []).map((item) => (typeof item === "string" ? item : (decodeValue(item) as ArgumentItem))),
    storage: (storage ?? []).map(({ options, ...disk }) =>
      options === undefined ? disk : { ...disk, options: Object.fromEntries(options) },
    ),
  };
  if (shares !== undefined) {
    config.shares = shares.map(({ extra, ...share }) =>
      extra === undefined ? share : { ...share, extra: Object.fromEntries(extra) },
    );
  }
  return config;
}

function encodeValue(value: unknown): StoredArgumentValue {
  if (Array.isArray(value)) return value.map(encodeValue);
  if (value !== null && typeof value === "object") {
    return { pairs: Object.entries(value).map(([key, item]) => [key, encodeValue(item)]) };
  }
  return (value ?? null) as StoredArgumentValue;
}

function decodeValue(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(decodeValue);
  if (value !== null && typeof value === "object") {
    const pairs = (value as { pairs?: unknown }).pairs;
    if (!Array.isArray(pairs)) return value; // not written by encodeValue; leave it as read
    const out: Record<string, unknown> = {};
    for (const [key, item] of pairs as [string, unknown][]) out[key] = decodeValue(item);
    return out;
  }
  return value;
}

/** A legacy config as read, with the key paths of the mappings whose lost order mattered. */
function flagLegacy(config: VmConfig): VmConfig {
  const lost: string[] = [];
  (config.arguments ?? []).forEach((item, i) => {
    if (typeof item !== "object" || item === null) return;
    const keys = Object.keys(item);
    if (keys.length > 1) lost.push(`arguments[${i}]`);
    for (const key of keys) findNestedOrder(item[key], `arguments[${i}].${key}`, lost);
  });
  return lost.length > 0 ? { ...config, argumentOrderLost: lost } : config;
}

/** A nested mapping's order shows in the argv when it has a bare word (a key without a value). */
function findNestedOrder(value: unknown, path: string, lost: string[]): void {
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) findNestedOrder(item, `${path}[${i}]`, lost);
    return;
  }
  if (value === null || typeof value !== "object") return;
  const entries = Object.entries(value);
  const bare = entries.some(([, v]) => v === null || (typeof v === "object" && v !== null && isEmptyMapping(v)));
  if (entries.length > 1 && bare) lost.push(path);
  for (const [key, item] of entries) findNestedOrder(item, `${path}.${key}`, lost);
}

function isEmptyMapping(value: object): boolean {
  return !Array.isArray(value) && Object.keys(value).length === 0;
}
