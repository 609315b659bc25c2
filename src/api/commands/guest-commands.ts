/**
 * Into the guest: `port` (the VM's forwards) and `ssh` (a login through the forward of guest
 * port 22 with the VM's own key).
 *
 * @example
 * ```ts
 * GUEST_COMMANDS.map((c) => c.name); // ["port", "ssh"]
 * ```
 */
import { MaqetError } from "../../errors/maqet-error.ts";
import { type CommandSpec, list, text } from "./command-spec.ts";
import { streamedResult } from "./streamed-result.ts";

export const GUEST_COMMANDS: readonly CommandSpec[] = [
  {
    name: "port",
    aliases: ["ports"],
    summary: "List a VM's port forwards (ports:): host address and port → guest port, as this run bound them",
    positionals: [{ name: "vm", description: "VM name or id" }],
    options: [],
    examples: ["maqet port web", "maqet port web --json"],
    invoke: (m, i) => m.ports(text(i, "vm")),
  },
  {
    name: "ssh",
    summary: "Log in to a VM over SSH with its own key, through the host port forwarded to guest port 22",
    positionals: [
      { name: "vm", description: "VM name or id" },
      {
        name: "command",
        description: "a command to run instead of a login shell (after --)",
        optional: true,
        variadic: true,
      },
    ],
    options: [
      {
        name: "user",
        type: "string",
        value: "USER",
        description: "log in as USER (default: cloud-init's user, else root)",
      },
    ],
    examples: ["maqet ssh web", "maqet ssh web -- uname -a", "maqet ssh web --user debian"],
    invoke: async (m, i, io) => {
      if (io === undefined) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          "ssh runs the OpenSSH client on this terminal; from a program, read ports(VM).ssh and run ssh yourself.",
        );
      }
      const vm = text(i, "vm");
      const ports = await m.ports(vm);
      if (ports.state !== "running" && ports.state !== "paused") {
        throw new MaqetError(
          "VM_INVALID_STATE",
          `Cannot ssh into VM '${ports.vm}': it is ${ports.state}. Start it and wait for its SSH server: \`maqet start ${ports.vm} --wait-for ssh\`.`,
          { details: { vm: ports.vm, state: ports.state } },
        );
      }
      if (ports.ssh === undefined) {
        throw new MaqetError(
          "INVALID_ARGUMENT",
          `VM '${ports.vm}' forwards no host port to guest port 22. Add one to its config (ports: ["0:22"] picks a free host port), then restart it.`,
          { details: { vm: ports.vm } },
        );
      }
      const target = { ...ports.ssh, ...(i.user !== undefined ? { user: String(i.user) } : {}) };
      const command = list(i, "command");
      let exitCode = 0;
      // A streamed result: the CLI releases the store before ssh runs (a login may last hours).
      // rxjs is loaded here, not at import: the thin CLI's path through an agent imports none.
      const { Observable } = await import("rxjs");
      const run$ = new Observable<string>((subscriber) => {
        import("../../adapters/run-ssh.ts")
          .then(({ runSsh }) => runSsh(target, command))
          .then(
            (code) => {
              exitCode = code;
              subscriber.complete();
            },
            (error: unknown) => subscriber.error(error),
          );
      });
      return streamedResult(run$, { vm: ports.vm, ssh: target }, () => exitCode);
    },
  },
];
