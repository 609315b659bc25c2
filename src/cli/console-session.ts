/**
 * One `maqet console VM -i` from attach to exit code, for both paths of the CLI: in-process (the
 * attachment came from the library; the detach is recorded afterwards with a new instance, since
 * the store was released while attached) and through the agent (the upgraded connection; the
 * agent records the detach). Exit 0 however the attach ends (detached, VM stopped, taken over,
 * signal): the user got the console; 1 when the connection failed.
 *
 * @example
 * ```ts
 * return runAttached(attachment, io, (end) => recordDetach(end));
 * ```
 */
import type { ConsoleConnection, ConsoleEnd } from "../adapters/serial-connection.ts";
import { type ConsoleAbout, endNote, processTerminal, runConsoleTerminal } from "./console-terminal.ts";
import type { CliIo } from "./main.ts";

export interface Attachable extends ConsoleAbout {
  open(onData: (bytes: Uint8Array) => void): Promise<ConsoleConnection> | ConsoleConnection;
}

export async function runAttached(
  attachment: Attachable,
  io: CliIo,
  recordDetach?: (end: ConsoleEnd) => Promise<void>,
): Promise<number> {
  const terminal = processTerminal();
  let conn: ConsoleConnection;
  try {
    conn = await attachment.open((bytes) => terminal.write(bytes));
  } catch (error) {
    await recordDetach?.({ reason: "error", message: error instanceof Error ? error.message : String(error) }).catch(
      () => undefined,
    );
    throw error;
  }
  const end = await runConsoleTerminal(conn, attachment, terminal);
  io.stderr(endNote(attachment.vm, end).replace("\r\n", "\n"));
  try {
    await recordDetach?.(end);
  } catch (error) {
    io.stderr(
      `maqet: warning: the detach could not be recorded: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
  return end.reason === "error" ? 1 : 0;
}
