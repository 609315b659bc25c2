/**
 * Several VM configs merged into one, as MAQET merges `add a.yaml b.yaml` / `--vm-config F…`:
 * left to right, later wins. Mappings merge recursively and scalars are replaced; lists are
 * concatenated, except:
 * - `arguments`, merged by each item's first key (`m`, `device`, or the flag itself for `- enable-kvm`):
 *   the items of a later file replace every earlier item with that key, in the place of the first
 *   one; new keys are appended. Unlike MAQET, repeated keys *within one file* are all kept (MAQET's
 *   keying silently collapsed two `- device:` lines of an override file into the last one).
 * - `storage`, where an entry whose `name` an earlier file used replaces that entry (MAQET appended
 *   it and then failed with "Duplicate storage name").
 *
 * Relative paths are resolved against their own file's directory before merging
 * ({@link resolveLayerPaths}), so `base.yaml` in one directory and `disk.yaml` in another each
 * mean their own neighbours. Pure: no I/O.
 *
 * @example
 * ```ts
 * const merged = mergeConfigLayers([
 *   { value: { arguments: [{ m: "2G" }, { smp: 2 }] }, baseDir: "/srv/base" },
 *   { value: { arguments: [{ m: "4G" }, { display: "gtk" }] }, baseDir: "/srv/web" },
 * ]);
 * merged.arguments; // [{ m: "4G" }, { smp: 2 }, { display: "gtk" }]
 * ```
 */

/** One config file (or flag set) to merge: its parsed YAML mapping and its directory. */
export interface ConfigLayer {
  value: Record<string, unknown>;
  /** Absolute directory its relative paths mean (the file's directory). */
  baseDir: string;
}

type Plain = Record<string, unknown>;

const isPlain = (value: unknown): value is Plain =>
  typeof value === "object" && value !== null && !Array.isArray(value) && !(value instanceof Date);

/**
 * The key an `arguments` item is merged by: its first key, or the flag itself for a string item
 * (a leading `-` ignored, so `- enable-kvm`, `- -enable-kvm` and `- enable-kvm: null` are one key).
 *
 * @example
 * ```ts
 * argumentKey({ display: "gtk", "zoom-to-fit": "on" }); // "display"
 * argumentKey("-enable-kvm"); // "enable-kvm"
 * ```
 */
export function argumentKey(item: unknown): string | undefined {
  if (typeof item === "string") return item.replace(/^-+/, "").split(/\s/)[0];
  if (isPlain(item)) {
    const first = Object.keys(item)[0];
    return first === undefined ? undefined : first.replace(/^-+/, "");
  }
  return undefined;
}

/**
 * Merges two `arguments` lists: the later list's items replace every earlier item of the same key
 * (at the place of the first), new keys are appended, repeated keys within `later` all stay.
 *
 * @example
 * ```ts
 * mergeArguments([{ m: "2G" }, { smp: 2 }], [{ m: "4G" }]); // [{ m: "4G" }, { smp: 2 }]
 * ```
 */
export function mergeArguments(earlier: readonly unknown[], later: readonly unknown[]): unknown[] {
  const byKey = new Map<string, unknown[]>();
  const keyless: unknown[] = [];
  for (const item of later) {
    const key = argumentKey(item);
    if (key === undefined) keyless.push(item);
    else byKey.set(key, [...(byKey.get(key) ?? []), item]);
  }
  const out: unknown[] = [];
  const placed = new Set<string>();
  for (const item of earlier) {
    const key = argumentKey(item);
    const replacement = key === undefined ? undefined : byKey.get(key);
    if (replacement === undefined) {
      out.push(item);
      continue;
    }
    if (!placed.has(key!)) out.push(...replacement);
    placed.add(key!);
  }
  for (const item of later) {
    const key = argumentKey(item);
    if (key === undefined || !placed.has(key)) out.push(item);
  }
  return out;
}

/** `storage` (and a config's `shares`) lists: a later entry named like an earlier one replaces it; the rest is appended. */
function mergeStorage(earlier: readonly unknown[], later: readonly unknown[]): unknown[] {
  const out = [...earlier];
  for (const entry of later) {
    const name = isPlain(entry) && typeof entry.name === "string" ? entry.name : undefined;
    const at = name === undefined ? -1 : out.findIndex((e) => isPlain(e) && e.name === name);
    if (at === -1) out.push(entry);
    else out[at] = entry;
  }
  return out;
}

/**
 * Deep-merges `later` over `earlier` (see the file comment for the list rules). Neither input is
 * changed; the result shares no mutable structure with them.
 *
 * @example
 * ```ts
 * mergeConfigValues({ memory: "2G", tags: ["a"] }, { memory: "4G", tags: ["b"] }); // { memory: "4G", tags: ["a", "b"] }
 * ```
 */
export function mergeConfigValues(earlier: Plain, later: Plain, path = ""): Plain {
  const out: Plain = structuredClone(earlier);
  for (const [key, value] of Object.entries(later)) {
    const before = out[key];
    const at = path === "" ? key : `${path}.${key}`;
    if (Array.isArray(before) && Array.isArray(value)) {
      out[key] =
        at === "arguments"
          ? mergeArguments(before, structuredClone(value))
          : at === "storage" || at === "shares"
            ? mergeStorage(before, structuredClone(value))
            : [...before, ...structuredClone(value)];
    } else if (isPlain(before) && isPlain(value)) {
      out[key] = mergeConfigValues(before, value, at);
    } else {
      out[key] = structuredClone(value);
    }
  }
  return out;
}

/** POSIX join and normalise (runtime-neutral, like config-errors' resolvePath). */
function resolveAgainst(baseDir: string, path: string): string {
  if (path.startsWith("/") || path.startsWith("~") || path === "") return path;
  const parts: string[] = [];
  for (const part of `${baseDir}/${path}`.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/** `file=x` fragments of a QEMU option string, resolved (`,,` is QEMU's literal comma, left alone). */
function resolveFileFragments(text: string, baseDir: string): string {
  return text.replace(/(^|,)(file=)([^,]+)/g, (_m, lead: string, key: string, path: string) => {
    return `${lead}${key}${resolveAgainst(baseDir, path)}`;
  });
}

function resolveArgumentItem(item: unknown, baseDir: string): unknown {
  if (typeof item === "string") return resolveFileFragments(item, baseDir);
  if (!isPlain(item)) return item;
  const out: Plain = {};
  for (const [key, value] of Object.entries(item)) {
    if (key === "file" && typeof value === "string") out[key] = resolveAgainst(baseDir, value);
    else if (typeof value === "string") out[key] = resolveFileFragments(value, baseDir);
    else if (isPlain(value)) out[key] = resolveArgumentItem(value, baseDir);
    else out[key] = value;
  }
  return out;
}

/**
 * A layer's relative paths made absolute against its own directory: `binary` (when it names a
 * path), `kernel`, `initrd`, `storage[].file` (and, for a named disk without `file`, the default
 * `<name>.<type>` next to this file), `storage[].path` (VirtFS), and `file=` inside `arguments`.
 * `backing_file` stays relative: it means the image's own directory, as qemu-img reads it.
 *
 * @example
 * ```ts
 * resolveLayerPaths({ storage: [{ name: "hdd", type: "qcow2", file: "hdd.qcow2" }] }, "/srv/web");
 * // { storage: [{ name: "hdd", type: "qcow2", file: "/srv/web/hdd.qcow2" }] }
 * ```
 */
export function resolveLayerPaths(value: Plain, baseDir: string): Plain {
  const out: Plain = structuredClone(value);
  if (typeof out.binary === "string" && out.binary.includes("/")) out.binary = resolveAgainst(baseDir, out.binary);
  for (const key of ["kernel", "initrd"]) {
    if (typeof out[key] === "string") out[key] = resolveAgainst(baseDir, out[key] as string);
  }
  if (Array.isArray(out.storage)) {
    out.storage = out.storage.map((entry) => {
      if (!isPlain(entry)) return entry;
      const disk = { ...entry };
      if (typeof disk.file === "string") disk.file = resolveAgainst(baseDir, disk.file);
      else if (
        (disk.file === undefined || disk.file === null) &&
        typeof disk.name === "string" &&
        (disk.type === "qcow2" || disk.type === "raw")
      ) {
        disk.file = resolveAgainst(baseDir, `${disk.name}.${disk.type}`);
      }
      if (disk.type === "virtfs" && typeof disk.path === "string") disk.path = resolveAgainst(baseDir, disk.path);
      return disk;
    });
  }
  if (Array.isArray(out.arguments)) out.arguments = out.arguments.map((item) => resolveArgumentItem(item, baseDir));
  return out;
}

/**
 * Every layer's paths resolved against its own directory, then merged left to right.
 *
 * @example
 * ```ts
 * mergeConfigLayers([{ value: base, baseDir: "/srv" }, { value: { memory: "8G" }, baseDir: "/srv" }]);
 * ```
 */
export function mergeConfigLayers(layers: readonly ConfigLayer[]): Plain {
  let merged: Plain = {};
  for (const layer of layers) merged = mergeConfigValues(merged, resolveLayerPaths(layer.value, layer.baseDir));
  return merged;
}

/** What `--memory`, `--cpu`, `--binary`, `--enable-kvm` set (MAQET's `add`/`apply` flags). */
export interface ConfigOverrides {
  memory?: string;
  cpu?: number;
  binary?: string;
  /** MAQET's `--enable-kvm`: maqet's own spelling is `accel: kvm`. */
  enableKvm?: boolean;
}

/**
 * The flags as one more layer over `current` (the merged config so far). Where `current` sets
 * memory or CPUs through `arguments` (`- m: 2G`, `- smp: 2`), the flag replaces that item rather
 * than adding a second `-m` that QEMU would resolve by order.
 *
 * @example
 * ```ts
 * overridesLayer({ memory: "8G" }, { arguments: [{ m: "2G" }] }); // { arguments: [{ m: "8G" }] }
 * overridesLayer({ memory: "8G" }, {}); // { memory: "8G" }
 * ```
 */
export function overridesLayer(overrides: ConfigOverrides, current: Plain): Plain {
  const args = Array.isArray(current.arguments) ? current.arguments : [];
  const hasArg = (key: string) => args.some((item) => argumentKey(item) === key);
  const layer: Plain = {};
  const argumentItems: Plain[] = [];
  if (overrides.memory !== undefined) {
    if (hasArg("m")) argumentItems.push({ m: overrides.memory });
    else layer.memory = overrides.memory;
  }
  if (overrides.cpu !== undefined) {
    if (hasArg("smp")) argumentItems.push({ smp: overrides.cpu });
    else layer.cpu = overrides.cpu;
  }
  if (overrides.binary !== undefined) layer.binary = overrides.binary;
  if (overrides.enableKvm === true) layer.accel = "kvm";
  if (argumentItems.length > 0) layer.arguments = argumentItems;
  return layer;
}

/**
 * A VM's config after `apply`: `change` (the new files and flags, validated on their own) merged
 * over `current` by the rules above. Only what the change sets counts: a key it names
 * (`keys`, the merged YAML's top-level keys) or a value other than the validator's default
 * (`defaults`, what an empty config validates to), so an `apply` that says nothing about `accel`
 * keeps the VM's. `name` never changes (a VM keeps its name and id).
 *
 * @example
 * ```ts
 * const next = applyConfigChange(view.config, validate({ memory: "8G" }), ["memory"], validate({}));
 * ```
 */
export function applyConfigChange<T extends object>(current: T, change: T, keys: readonly string[], defaults: T): T {
  const picked: Plain = {};
  const changeRecord = change as unknown as Plain;
  const defaultRecord = defaults as unknown as Plain;
  for (const [key, value] of Object.entries(changeRecord)) {
    if (key === "name" || value === undefined) continue;
    const named = keys.includes(key) || (key === "shares" && keys.includes("storage"));
    if (named || JSON.stringify(value) !== JSON.stringify(defaultRecord[key])) picked[key] = value;
  }
  const merged = mergeConfigValues(current as unknown as Plain, picked);
  return merged as unknown as T;
}
