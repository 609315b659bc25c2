/**
 * `ports:` → {@link PortForward}s, in the docker / Lima spelling:
 *
 * | entry | host address | host port | guest port |
 * |---|---|---|---|
 * | `"2222:22"` | 127.0.0.1 | 2222 | 22 |
 * | `"127.0.0.1:8080:80/tcp"` | 127.0.0.1 | 8080 | 80 |
 * | `"0.0.0.0:8080:80"` | every address | 8080 | 80 |
 * | `"0:22"`, `"22"`, `22`, `"127.0.0.1::22"` | 127.0.0.1 | chosen free at start | 22 |
 * | `"5353:53/udp"` | 127.0.0.1 | 5353 (udp) | 53 |
 *
 * The default host address is 127.0.0.1, not docker's 0.0.0.0: a forward reaches the guest's
 * services (often an SSH server with a known key, a database without a password), and exposing
 * them to the whole network should be a choice written in the config, not a default.
 *
 * Networking rule: `ports:` gives the VM a NIC of maqet's own (`-netdev user,id=maqet-net0,
 * hostfwd=…` + `-device virtio-net-pci,netdev=maqet-net0`). A config that also sets up user-mode
 * networking itself (`-netdev user`, `-nic user`, `-net user` in `arguments` or `args`) is refused:
 * the forwards would not be on the network the user configured, and two user-mode NICs give the
 * guest two default routes. `-nic none` / `-net none` contradict `ports:` and are refused too.
 * Other back-ends (tap, bridge, socket…) are kept: the guest gets them as further NICs.
 *
 * Pure. Errors are CONFIG_INVALID with the key path (`ports[1]`).
 *
 * @example
 * ```ts
 * parsePorts(["2222:22", "127.0.0.1:8080:80/tcp"], { source: "web.yaml" });
 * // [{ hostIp: "127.0.0.1", hostPort: 2222, guestPort: 22, protocol: "tcp" }, { …8080→80 }]
 * ```
 */
import { type ConfigContext, configError, show } from "./config-errors.ts";
import type { PortForward } from "./vm-config.ts";

/** The host address a forward binds when the entry names none. */
export const DEFAULT_FORWARD_HOST = "127.0.0.1";
/** The netdev and NIC ids maqet gives the user-mode NIC of `ports:`. */
export const FORWARD_NETDEV_ID = "maqet-net0";

const ENTRY = /^(?:(?<ip>[0-9.]+):)?(?:(?<host>\d*):)?(?<guest>\d+)(?:\/(?<proto>tcp|udp))?$/;
const EXPECTED = 'a port forward like "2222:22", "127.0.0.1:8080:80/tcp", "0:22" (a free host port) or "5353:53/udp"';

/**
 * Parses the `ports` list; undefined when the key is absent or empty.
 *
 * @example
 * ```ts
 * parsePorts(["0:22"], { source: "vm.yaml" })?.[0]?.hostPort; // 0: chosen at start
 * ```
 */
export function parsePorts(value: unknown, ctx: ConfigContext): PortForward[] | undefined {
  if (value === undefined || value === null) return undefined;
  if (!Array.isArray(value)) configError(ctx, "ports", `a list of ${EXPECTED}`, value);
  const forwards = value.map((entry, i) => parsePortEntry(entry, `ports[${i}]`, ctx));
  const seen = new Map<string, number>();
  forwards.forEach((forward, i) => {
    if (forward.hostPort === 0) return;
    const key = `${forward.protocol}:${forward.hostPort}`;
    const first = seen.get(key);
    if (first !== undefined) {
      configError(
        ctx,
        `ports[${i}]`,
        `a host port not already forwarded (ports[${first}] uses ${forward.protocol} port ${forward.hostPort})`,
        value[i],
        "Choose another host port, or 0 for a free one,",
      );
    }
    seen.set(key, i);
  });
  return forwards.length > 0 ? forwards : undefined;
}

function parsePortEntry(entry: unknown, keyPath: string, ctx: ConfigContext): PortForward {
  if (typeof entry === "number" && Number.isInteger(entry)) entry = String(entry);
  if (typeof entry === "object" && entry !== null) {
    configError(ctx, keyPath, `${EXPECTED} (one string; docker's long form is not supported)`, entry);
  }
  if (typeof entry !== "string") configError(ctx, keyPath, EXPECTED, entry);
  const text = entry.trim();
  if (text.startsWith("[") || /^[0-9a-f]*:[0-9a-f]*:[0-9a-f]*:/i.test(text)) {
    configError(ctx, keyPath, `${EXPECTED}; IPv6 host addresses are not supported by QEMU's hostfwd here`, entry);
  }
  if (/\d-\d/.test(text)) configError(ctx, keyPath, `${EXPECTED}; one port per entry (no ranges)`, entry);
  const match = ENTRY.exec(text);
  if (match?.groups === undefined) configError(ctx, keyPath, EXPECTED, entry);
  const { ip, host, guest, proto } = match.groups;
  // "A:B" is host:guest, never ip:guest: a bare number before the guest port is a port.
  let hostIp = ip;
  let hostText = host;
  if (hostIp !== undefined && hostText === undefined && !hostIp.includes(".")) {
    hostText = hostIp;
    hostIp = undefined;
  }
  if (hostIp !== undefined && !isIpv4(hostIp)) {
    configError(ctx, keyPath, `${EXPECTED}; '${hostIp}' is not an IPv4 address`, entry);
  }
  const guestPort = Number(guest);
  if (guestPort < 1 || guestPort > 65535) {
    configError(ctx, keyPath, `${EXPECTED}; the guest port must be 1-65535`, entry);
  }
  const hostPort = hostText === undefined || hostText === "" ? 0 : Number(hostText);
  if (hostPort > 65535) configError(ctx, keyPath, `${EXPECTED}; the host port must be 0-65535`, entry);
  return {
    hostIp: hostIp ?? DEFAULT_FORWARD_HOST,
    hostPort,
    guestPort,
    protocol: (proto as "tcp" | "udp" | undefined) ?? "tcp",
  };
}

function isIpv4(text: string): boolean {
  const parts = text.split(".");
  return parts.length === 4 && parts.every((p) => /^\d{1,3}$/.test(p) && Number(p) <= 255);
}

/**
 * Where the config sets up networking that `ports:` cannot join (see the module comment): the
 * key path and the words, or undefined. `words` are the user's argv words with the key path of
 * each (`arguments[2]`, `args[5]`).
 *
 * @example
 * ```ts
 * findNetworkConflict([{ word: "-netdev", at: "args[0]" }, { word: "user,id=n0", at: "args[1]" }]);
 * // { at: "args[0]", words: "-netdev user,id=n0" }
 * ```
 */
export function findNetworkConflict(
  words: readonly { word: string; at: string }[],
): { at: string; words: string } | undefined {
  for (let i = 0; i < words.length; i++) {
    const option = words[i]!.word.replace(/^--?/, "-");
    if (option !== "-netdev" && option !== "-nic" && option !== "-net") continue;
    const value = words[i + 1]?.word ?? "";
    const first = value.split(",")[0] ?? "";
    const backend = first.startsWith("type=") ? first.slice(5) : first;
    if (backend === "user" || backend === "none") {
      return { at: words[i]!.at, words: `${words[i]!.word} ${value}` };
    }
  }
  return undefined;
}

/** The CONFIG_INVALID for a config whose own networking `ports:` cannot join. */
export function networkConflictError(ctx: ConfigContext, conflict: { at: string; words: string }): never {
  return configError(
    ctx,
    "ports",
    `used without user-mode networking of the config's own (ports: adds its NIC '${FORWARD_NETDEV_ID}' with the forwards; ${conflict.at} sets up ${show(conflict.words)})`,
    conflict.words,
    `Either remove ${conflict.at} and keep ports:, or remove ports: and write the forwards into that -netdev as hostfwd=tcp:127.0.0.1:2222-:22,`,
  );
}
