/**
 * Text output of `port`: one line per forward, docker's `port` form (`22/tcp -> 127.0.0.1:2222`),
 * then how to log in when guest port 22 is forwarded.
 *
 * @example
 * ```ts
 * GUEST_RENDERERS.port({ vm: "web", state: "running", live: true, forwards: [{ hostIp: "127.0.0.1", hostPort: 2222, guestPort: 22, protocol: "tcp", auto: false }] });
 * // "22/tcp -> 127.0.0.1:2222\nssh: maqet ssh web (root@127.0.0.1 port 2222)"
 * ```
 */
import type { PortList } from "../../api/ops/guest-ops.ts";
import type { Renderer } from "./renderer.ts";

export const GUEST_RENDERERS: Record<string, Renderer> = {
  port: (result) => {
    const list = result as PortList;
    if (list.forwards.length === 0) return `VM '${list.vm}' forwards no ports (add ports: to its config).`;
    const lines = list.forwards.map((f) => {
      const host = f.hostPort === 0 ? `${f.hostIp}:(a free port at start)` : `${f.hostIp}:${f.hostPort}`;
      return `${f.guestPort}/${f.protocol} -> ${host}${f.auto && f.hostPort !== 0 ? " (chosen at start)" : ""}`;
    });
    if (!list.live) lines.push(`(VM '${list.vm}' is ${list.state}: these are its config's forwards)`);
    if (list.ssh !== undefined && list.live) {
      lines.push(`ssh: maqet ssh ${list.vm} (${list.ssh.user}@${list.ssh.host} port ${list.ssh.port})`);
    }
    return lines.join("\n");
  },
};
