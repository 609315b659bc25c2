/**
 * Runs the system `ssh` for `maqet ssh`: no shell, an argument array, this terminal's stdin,
 * stdout and stderr (stdio inherited), and resolves with ssh's exit code (255: ssh's own error).
 *
 * The words: `-i <key> -o IdentitiesOnly=yes` (only the VM's key is offered),
 * `-o PreferredAuthentications=publickey` (no password prompt that would hang a script),
 * `-o StrictHostKeyChecking=accept-new -o UserKnownHostsFile=<the VM's known_hosts>` (the guest's
 * host key is learnt at the first login of a run and must not change after),
 * `-o LogLevel=ERROR`, `-p <port> -l <user> <host>`, then `--` and the command, if any.
 *
 * @example
 * ```ts
 * const code = await runSsh(target, ["uname", "-a"]); // prints the guest's uname, returns 0
 * ```
 */
import { spawn } from "node:child_process";
import type { SshTarget } from "../api/ops/guest-ops.ts";
import { MaqetError } from "../errors/maqet-error.ts";

/**
 * The argument list (after `ssh`).
 *
 * @example
 * ```ts
 * sshArgs({ host: "127.0.0.1", port: 2222, user: "root", identityFile: "/k/id", knownHostsFile: "/k/kh" }, ["true"]).at(-2); // "--"
 * ```
 */
export function sshArgs(target: SshTarget, command: readonly string[]): string[] {
  return [
    "-i",
    target.identityFile,
    "-o",
    "IdentitiesOnly=yes",
    "-o",
    "PreferredAuthentications=publickey",
    "-o",
    "StrictHostKeyChecking=accept-new",
    "-o",
    `UserKnownHostsFile=${target.knownHostsFile}`,
    "-o",
    "LogLevel=ERROR",
    "-p",
    String(target.port),
    "-l",
    target.user,
    target.host,
    ...(command.length > 0 ? ["--", ...command] : []),
  ];
}

export function runSsh(target: SshTarget, command: readonly string[], program = "ssh"): Promise<number> {
  return new Promise((resolve, reject) => {
    const child = spawn(program, sshArgs(target, command), { stdio: "inherit" });
    child.once("error", (error: NodeJS.ErrnoException) => {
      reject(
        error.code === "ENOENT"
          ? new MaqetError(
              "BINARY_NOT_FOUND",
              `'${program}' is not installed: maqet ssh runs the system's OpenSSH client. Install it (Debian: apt-get install openssh-client).`,
              { cause: error, details: { program } },
            )
          : error,
      );
    });
    child.once("close", (code, signal) => resolve(code ?? (signal ? 128 + 2 : 255)));
  });
}
