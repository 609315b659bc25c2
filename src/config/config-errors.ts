import { MaqetError } from "../errors/maqet-error.ts";

export interface ConfigContext {
  source: string;
}

/** Throws CONFIG_INVALID: "Invalid config: 'key' must be X (got V). Fix the value in F." */
export function configError(
  ctx: ConfigContext,
  keyPath: string,
  expected: string,
  value: unknown,
  fix?: string,
): never {
  const action = fix ? `${fix} in ${ctx.source}.` : `Fix the value in ${ctx.source}.`;
  throw new MaqetError(
    "CONFIG_INVALID",
    `Invalid config: '${keyPath}' must be ${expected} (got ${show(value)}). ${action}`,
    {
      details: { keyPath, source: ctx.source, value },
    },
  );
}

export function expectString(value: unknown, keyPath: string, ctx: ConfigContext): string {
  if (typeof value !== "string" || value.trim() === "" || /[\0\n\r]/.test(value)) {
    configError(ctx, keyPath, "a non-empty single-line string", value);
  }
  return value;
}

/** A value as it appears in messages: strings quoted, long values cut. */
export function show(value: unknown): string {
  if (value === undefined) return "nothing";
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 57)}...` : text;
}

/**
 * POSIX resolve without node:path (this module stays runtime-neutral). `~` is refused rather than
 * silently becoming a directory named "~".
 */
export function resolvePath(baseDir: string, path: string, keyPath: string, ctx: ConfigContext): string {
  if (path.startsWith("~"))
    configError(ctx, keyPath, "an absolute path or one relative to the config file ('~' is not expanded)", path);
  const parts: string[] = [];
  for (const part of `${path.startsWith("/") ? "" : baseDir}/${path}`.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") parts.pop();
    else parts.push(part);
  }
  return `/${parts.join("/")}`;
}

/** The closest candidate within two edits, for "Did you mean" hints. */
export function suggest(key: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of candidates) {
    const d = editDistance(key.toLowerCase(), candidate);
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let row = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const next = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      next[j] = Math.min((row[j] ?? 0) + 1, (next[j - 1] ?? 0) + 1, (row[j - 1] ?? 0) + cost);
    }
    row = next;
  }
  return row[b.length] ?? 0;
}
