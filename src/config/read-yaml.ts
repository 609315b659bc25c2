/**
 * Reading one VM config file's YAML into plain values, with maqet's rules: YAML 1.2 core schema,
 * one document, no custom tags, a repeated key last-wins with a warning (as PyYAML), and no
 * whole-number key under `arguments` that JavaScript would move (the order is the argv's).
 * Split from parse-vm-config.ts (which validates the values).
 *
 * @example
 * ```ts
 * readYaml("memory: 1G\n", { source: "web.yaml" }); // { memory: "1G" }
 * ```
 */
import { isMap, isScalar, isSeq, LineCounter, parseDocument, visit } from "yaml";
import { MaqetError } from "../errors/maqet-error.ts";
import type { ConfigContext } from "./config-errors.ts";

/**
 * One YAML document as plain values (the rules above: 1.2 core, a repeated key is last-wins with
 * a warning to `onWarning`, no tags); `{}` for an empty file.
 */
export function readYaml(text: string, ctx: ConfigContext, onWarning?: (message: string) => void): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text.replace(/^\uFEFF/, ""), {
    version: "1.2",
    schema: "core",
    merge: true,
    // A repeated key is MAQET's (PyYAML's) last-wins, with a warning naming the lines (below).
    uniqueKeys: false,
    prettyErrors: false,
    lineCounter,
  });
  const at = (offset: number | undefined): string => {
    const { line, col } = lineCounter.linePos(offset ?? 0);
    return `line ${line}, column ${col}`;
  };
  const yamlError = (message: string, offset: number | undefined, fix: string): never => {
    throw new MaqetError("CONFIG_INVALID", `Invalid YAML in ${ctx.source}: ${message} (${at(offset)}). ${fix}`, {
      details: { source: ctx.source, position: at(offset) },
    });
  };
  const error = doc.errors[0];
  if (error !== undefined) yamlError(error.message, error.pos[0], "Fix the YAML syntax.");
  // Custom tags (PyYAML's !!python/object, !!binary...) only warn in the yaml package; we refuse.
  const warning = doc.warnings[0];
  if (warning !== undefined) {
    yamlError(warning.message, warning.pos[0], "maqet reads plain YAML (1.2 core schema); remove the tag.");
  }
  visit(doc, {
    Map(_, map) {
      const seen = new Map<string, number | undefined>();
      for (const pair of map.items) {
        if (!isScalar(pair.key)) continue;
        const key = String(pair.key.value);
        const offset = pair.key.range?.[0];
        if (seen.has(key)) {
          const first = lineCounter.linePos(seen.get(key) ?? 0).line;
          const again = lineCounter.linePos(offset ?? 0).line;
          onWarning?.(
            `'${key}' is given twice in ${ctx.source} (line ${first} and line ${again}); the last one (line ${again}) is used, as in MAQET. Remove one of them.`,
          );
        }
        seen.set(key, offset);
      }
    },
    Pair(_, pair) {
      if (pair.key !== null && !isScalar(pair.key)) {
        yamlError(
          "a mapping key must be a plain value, not a list or mapping",
          (pair.key as { range?: number[] }).range?.[0],
          "Fix the key.",
        );
      }
    },
  });
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (cause) {
    // The yaml package throws a ReferenceError for alias bombs ("billion laughs").
    throw new MaqetError(
      "CONFIG_INVALID",
      `Invalid YAML in ${ctx.source}: ${(cause as Error).message}. Use fewer aliases (*name).`,
      { cause, details: { source: ctx.source } },
    );
  }
  const argumentsNode = isMap(doc.contents) ? doc.contents.get("arguments", true) : undefined;
  const moved = findMovedKey(argumentsNode, "arguments");
  if (moved !== undefined) {
    yamlError(
      `the key '${moved.key}' at ${moved.path} is a whole number, and a whole-number key cannot keep its place in a mapping (it would move before the named keys and change the argv)`,
      moved.offset,
      "Put whole-number keys first and in increasing order, or write the option as one string, e.g. - blockdev: driver=quorum,children.0=d1.",
    );
  }
  return value ?? {}; // an empty file is an empty VM, as MAQET's `add --empty`
}

/**
 * JavaScript objects put keys that are whole numbers (`0`, `17`) first, in increasing order: the
 * first such key under `arguments` that would not stay where it is written (its mapping's order
 * is its meaning there).
 */
function findMovedKey(
  node: unknown,
  path: string,
): { key: string; path: string; offset: number | undefined } | undefined {
  if (isSeq(node)) {
    for (const [i, item] of node.items.entries()) {
      const found = findMovedKey(item, `${path}[${i}]`);
      if (found) return found;
    }
    return undefined;
  }
  if (!isMap(node)) return undefined;
  // A repeated key keeps its first place (and its last value), in YAML as in a JavaScript object.
  const written = [...new Set(node.items.map((pair) => String(isScalar(pair.key) ? pair.key.value : pair.key)))];
  const order = Object.keys(Object.fromEntries(written.map((key) => [key, true])));
  const index = written.findIndex((key, i) => order[i] !== key);
  if (index >= 0) {
    const key = order[index] as string; // the whole-number key that would jump to this place
    const pair = node.items[written.indexOf(key)];
    return { key, path, offset: (pair?.key as { range?: number[] } | null)?.range?.[0] };
  }
  for (const pair of node.items) {
    const found = findMovedKey(pair.value, `${path}.${String(isScalar(pair.key) ? pair.key.value : pair.key)}`);
    if (found) return found;
  }
  return undefined;
}
