/**
 * Reaching into a VM from the host: its port forwards (`ports:`), and what `maqet ssh` needs to
 * log in (the forwarded port of guest 22, the login, the VM's key and known_hosts files — paths
 * only: the private key is never read, returned or recorded).
 *
 * A running VM's forwards are the ones its run recorded in `vm.started` (a `0` host port
 * resolved); a stopped VM's are its config's (`hostPort: 0` = chosen at the next start).
 *
 * Forwards are not changed on a running VM: QMP has no command for it (only HMP's
 * `hostfwd_add`, reachable through `human-monitor-command`, maqet's dangerous tier, which taints
 * the VM). Change `ports:` with `maqet apply` (or `edit`) and restart. docs/config.md says why.
 *
 * @example
 * ```ts
 * const list = await maqet.ports("web");
 * list.forwards; // [{ hostIp: "127.0.0.1", hostPort: 41873, guestPort: 22, protocol: "tcp", auto: true }]
 * list.ssh;      // { host: "127.0.0.1", port: 41873, user: "root", identityFile: "…/id_ed25519", … }
 * ```
 */
import type { VmView } from "../../actors/vm-view.ts";
import { sshEndpoint } from "../../actors/wait-condition.ts";
import { defaultDataDir } from "../../adapters/default-dirs.ts";
import { sshKeyPaths } from "../../adapters/ssh-keys.ts";
import type { PortForward } from "../../config/vm-config.ts";
import type { MaqetContext } from "../maqet-context.ts";

/** One forward as `maqet port` shows it. */
export interface ForwardEntry extends PortForward {
  /** True when the config asks for a free host port (`0:22`): chosen at each start. */
  auto: boolean;
}

/** What `maqet ssh` runs `ssh` with. */
export interface SshTarget {
  host: string;
  port: number;
  /** The login: from `cloud-init:` (`user:`, the first of `users:`), else `root`. */
  user: string;
  /** The VM's private key file (0600). Its path only. */
  identityFile: string;
  /** The VM's own known_hosts (StrictHostKeyChecking=accept-new). */
  knownHostsFile: string;
}

export interface PortList {
  vm: string;
  state: string;
  /** True when the host ports are the running VM's (recorded at its start); false: the config's. */
  live: boolean;
  forwards: ForwardEntry[];
  /** Present when a host port is forwarded to guest TCP port 22. */
  ssh?: SshTarget;
}

export interface GuestOps {
  /** The VM's port forwards, and where its SSH server is reached. */
  ports(name: string): Promise<PortList>;
}

export function guestOps(ctx: MaqetContext): GuestOps {
  return {
    ports: (name) =>
      ctx.operation(async (rt, orchestrator) => {
        const view = await orchestrator.liveView(name);
        const keyRoot = `${ctx.options.dataDir ?? defaultDataDir(ctx.options.env ?? {})}/vms`;
        const paths = rt.ports.guest?.keys.paths(view.vmId) ?? sshKeyPaths(keyRoot, view.vmId);
        return portList(view, paths);
      }),
  };
}

/**
 * The port list of a view (pure).
 *
 * @example
 * ```ts
 * portList(view, { identityFile: "/k/id_ed25519", knownHostsFile: "/k/known_hosts" }).forwards.length;
 * ```
 */
export function portList(
  view: Pick<VmView, "name" | "status" | "forwards" | "config">,
  keys: { identityFile: string; knownHostsFile: string },
): PortList {
  const running = view.status === "running" || view.status === "paused";
  const live = running && view.forwards !== undefined;
  const configured = view.config.ports ?? [];
  const current = live ? (view.forwards ?? []) : configured;
  const forwards = current.map((f, i) => ({ ...f, auto: configured[i]?.hostPort === 0 }));
  const list: PortList = { vm: view.name, state: view.status, live, forwards };
  const toSsh = forwards.find((f) => f.guestPort === 22 && f.protocol === "tcp");
  if (toSsh !== undefined) {
    const endpoint = sshEndpoint({ ...view, forwards: current });
    list.ssh = {
      ...endpoint,
      user: view.config.cloudInit?.sshUser ?? "root",
      identityFile: keys.identityFile,
      knownHostsFile: keys.knownHostsFile,
    };
  }
  return list;
}
