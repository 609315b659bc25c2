/**
 * Whether the process's fd 0, 1 or 2 is a terminal (colour, progress, y/N questions), cheaply.
 *
 * @example
 * ```ts
 * if (isTerminal(1)) paint = colours;
 * ```
 */
import { fstatSync } from "node:fs";

/**
 * Whether fd 0, 1 or 2 is a terminal, asked of the stream Node makes for it — only once the
 * answer is needed, and only when the fd is a character device at all. `node:tty`'s `isatty`
 * would load `node:tty` (~1.3 ms at every start) for a call whose output goes to a pipe or a
 * file, which is every call a script makes.
 */
export function isTerminal(fd: 0 | 1 | 2): boolean {
  terminal[fd] ??=
    isCharacterDevice(fd) && (fd === 0 ? process.stdin : fd === 1 ? process.stdout : process.stderr).isTTY === true;
  return terminal[fd];
}
/** isTerminal's answers, one per fd (progress asks at every frame). */
const terminal: Array<boolean | undefined> = [];

function isCharacterDevice(fd: number): boolean {
  try {
    return fstatSync(fd).isCharacterDevice();
  } catch {
    return false; // closed
  }
}
