#!/usr/bin/env node
/**
 * The `maqet` executable.
 *
 * @example
 * ```sh
 * maqet add examples/demo.yaml && maqet start demo && maqet status demo --json
 * ```
 */
import { runMaqetProcess } from "./process-main.ts";

await runMaqetProcess();
