/**
 * Renders MAQET's structured `arguments` items into QEMU argv words, following MAQET 0.0.12's
 * `handle_arguments` / `_format_nested_value` rules (reference: maqet.md §5):
 *
 * | item                                         | argv                                  |
 * |----------------------------------------------|---------------------------------------|
 * | `"enable-kvm"` / `"-enable-kvm"`             | `-enable-kvm` (a leading dash is kept) |
 * | `{enable-kvm: null}`                         | `-enable-kvm`                         |
 * | `{smp: 2}`                                   | `-smp 2`                              |
 * | `{display: gtk, zoom-to-fit: on}`            | `-display gtk,zoom-to-fit=on` (first value positional) |
 * | `{device: {driver: e1000, netdev: n0}}`      | `-device driver=e1000,netdev=n0`      |
 * | `{display: {gtk: null, zoom-to-fit: on}}`    | `-display gtk,zoom-to-fit=on`         |
 * | `{object: {a: {b: {c: 1}}}}`                 | `-object a.b.c=1` (deeper nesting is dotted) |
 * | `{arg: [foo, bar]}`                          | `-arg foo,bar` (a list is comma-joined) |
 * | `{device: virtio-net, feat: [a, b]}`         | `-device virtio-net,feat.a,feat.b` (a list under a key: dotted flags) |
 *
 * Items are rendered as written: no deduplication (several `-device` stay several), no comma
 * escaping inside values (write QEMU's `,,` yourself), `m`/`smp` do not touch `memory`/`cpu`.
 *
 * Two deliberate differences from MAQET, both where MAQET produced argv QEMU rejects:
 * - booleans render as `on`/`off` (Python printed `True`, which QEMU refuses; and under YAML 1.1
 *   MAQET turned a written `on` into `True`);
 * - an empty nested value (`{}` or `[]`) in the positional slot adds nothing (MAQET added an empty
 *   part, giving `-display ,zoom-to-fit=on`); `null` items inside lists are skipped (MAQET: `None`).
 *
 * @example
 * ```ts
 * renderArguments(["enable-kvm", { device: { driver: "e1000", netdev: "n0" } }]);
 * // ["-enable-kvm", "-device", "driver=e1000,netdev=n0"]
 * ```
 */
import type { ArgumentItem } from "./vm-config.ts";

type Mapping = Record<string, unknown>;

/**
 * Renders every item in order and concatenates the words.
 *
 * @example
 * ```ts
 * renderArguments([{ smp: 2 }, { m: "1G" }]); // ["-smp", "2", "-m", "1G"]
 * ```
 */
export function renderArguments(items: readonly ArgumentItem[]): string[] {
  return items.flatMap((item) => renderArgumentItem(item));
}

/**
 * Renders one item: a string flag gives one word, a mapping gives the option and, when it has a
 * value, one more word. An empty mapping gives nothing (the config parser rejects it anyway).
 *
 * @example
 * ```ts
 * renderArgumentItem({ display: "gtk", "zoom-to-fit": "on" }); // ["-display", "gtk,zoom-to-fit=on"]
 * ```
 */
export function renderArgumentItem(item: ArgumentItem): string[] {
  if (typeof item === "string") return [item.startsWith("-") ? item : `-${item}`];
  const entries = Object.entries(item);
  const first = entries[0];
  if (first === undefined) return [];
  const [firstKey, firstValue] = first;
  const option = `-${firstKey}`;

  if (entries.length === 1) {
    if (firstValue === null || firstValue === undefined) return [option];
    if (isCollection(firstValue)) {
      // MAQET special-cases `{display: {gtk: null, ...}}`, but that gives exactly what the generic
      // nested formatting gives, so one path covers both.
      const formatted = formatNested(firstValue, []);
      return formatted === "" ? [option] : [option, formatted];
    }
    return [option, scalarText(firstValue)];
  }

  // Multi-key mapping: the first key names the option, its value is positional, the rest are
  // suboptions.
  const parts: string[] = [];
  if (firstValue !== null && firstValue !== undefined) {
    if (isCollection(firstValue)) {
      const formatted = formatNested(firstValue, []);
      if (formatted !== "") parts.push(formatted);
    } else {
      parts.push(scalarText(firstValue));
    }
  }
  for (const [key, value] of entries.slice(1)) {
    if (isEmptyValue(value)) parts.push(key);
    else if (isCollection(value)) {
      const formatted = formatNested(value, [key]);
      if (formatted !== "") parts.push(formatted);
    } else parts.push(`${key}=${scalarText(value)}`);
  }
  return parts.length > 0 ? [option, parts.join(",")] : [option];
}

/** MAQET's `_format_nested_value`: suboptions joined by commas, nesting joined by dots. */
function formatNested(value: unknown, stack: readonly string[]): string {
  const prefix = stack.join(".");
  if (isEmptyValue(value)) return prefix;
  if (!isCollection(value)) return stack.length > 0 ? `${prefix}=${scalarText(value)}` : scalarText(value);

  const parts: string[] = [];
  if (Array.isArray(value)) {
    for (const item of value) {
      if (item === null || item === undefined) continue;
      if (isCollection(item)) {
        const formatted = formatNested(item, stack);
        if (formatted !== "") parts.push(formatted);
      } else {
        parts.push(stack.length > 0 ? `${prefix}.${scalarText(item)}` : scalarText(item));
      }
    }
  } else {
    for (const [key, item] of Object.entries(value)) {
      if (isEmptyValue(item)) parts.push(stack.length > 0 ? `${prefix}.${key}` : key);
      else if (isCollection(item)) {
        const formatted = formatNested(item, [...stack, key]);
        if (formatted !== "") parts.push(formatted);
      } else {
        parts.push(stack.length > 0 ? `${prefix}.${key}=${scalarText(item)}` : `${key}=${scalarText(item)}`);
      }
    }
  }
  return parts.join(",");
}

function isCollection(value: unknown): value is unknown[] | Mapping {
  return typeof value === "object" && value !== null;
}

/** `null` and `{}` mean "key without a value" (MAQET); an empty list is not empty in this sense. */
function isEmptyValue(value: unknown): boolean {
  if (value === null || value === undefined) return true;
  return typeof value === "object" && !Array.isArray(value) && Object.keys(value).length === 0;
}

function scalarText(value: unknown): string {
  if (typeof value === "boolean") return value ? "on" : "off";
  return String(value);
}

/** Where an `arguments` item breaks the accepted shape (`path` is relative to the item). */
export interface ArgumentProblem {
  /** e.g. "" for the item itself, ".device.driver" for a nested value. */
  path: string;
  /** What was expected, phrased to follow "must be". */
  expected: string;
  value: unknown;
}

const OPTION_NAME = /^[^\s,=\0]+$/;

/**
 * Checks one `arguments` item's shape without rendering it: a flag string without spaces, or a
 * non-empty mapping whose keys are option names and whose values are scalars, null, lists or
 * mappings (any depth). Returns the first problem, or undefined when the item is fine.
 *
 * @example
 * ```ts
 * findArgumentProblem("m 512"); // { path: "", expected: "an option name like enable-kvm ...", value: "m 512" }
 * findArgumentProblem({ smp: 2 }); // undefined
 * ```
 */
export function findArgumentProblem(item: unknown): ArgumentProblem | undefined {
  if (typeof item === "string") {
    return OPTION_NAME.test(item.replace(/^-+/, "")) && item.replace(/^-+/, "") !== ""
      ? undefined
      : {
          path: "",
          expected: "an option name like enable-kvm (write an option with a value as a mapping, e.g. - m: 512M)",
          value: item,
        };
  }
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    return { path: "", expected: "an option name like enable-kvm or a mapping like {smp: 2}", value: item };
  }
  if (Object.keys(item).length === 0) {
    return { path: "", expected: "a mapping with at least one option, like {smp: 2}", value: item };
  }
  return findValueProblem(item, "");
}

function findValueProblem(value: unknown, path: string): ArgumentProblem | undefined {
  if (value === null || typeof value === "boolean") return undefined;
  if (typeof value === "string") {
    return value.includes("\0") ? { path, expected: "a string without NUL bytes", value } : undefined;
  }
  if (typeof value === "number") {
    return Number.isFinite(value) ? undefined : { path, expected: "a finite number", value };
  }
  if (Array.isArray(value)) {
    for (const [i, item] of value.entries()) {
      if (item === null || item === undefined)
        return { path: `${path}[${i}]`, expected: "a value (not null)", value: item };
      const problem = findValueProblem(item, `${path}[${i}]`);
      if (problem) return problem;
    }
    return undefined;
  }
  if (typeof value === "object") {
    for (const [key, item] of Object.entries(value)) {
      if (!OPTION_NAME.test(key)) {
        return { path: `${path}.${key}`, expected: "named by an option name without spaces, ',' or '='", value: key };
      }
      const problem = findValueProblem(item, `${path}.${key}`);
      if (problem) return problem;
    }
    return undefined;
  }
  return { path, expected: "a string, number, boolean, null, list or mapping", value };
}
