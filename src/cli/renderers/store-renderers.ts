/**
 * Text output of the store commands.
 *
 * @example
 * ```ts
 * STORE_RENDERERS.migrate({ applied: [] }); // "The store is up to date."
 * ```
 */
import type { Renderer } from "./renderer.ts";

export const STORE_RENDERERS: Record<string, Renderer> = {
  migrate: (result) => {
    const applied = (result as { applied: string[] }).applied;
    return applied.length ? `Applied migrations: ${applied.join(", ")}.` : "The store is up to date.";
  },
};
