/**
 * The flags of `maqet agent` (a CLI-only command: it is the process the API runs in, not an
 * operation). Global `--db`, `--data-dir`, `--runtime-dir` mean what they mean for every command.
 *
 * @example
 * ```ts
 * parseAgentArgs(["--socket", "/run/maqet/agent.sock", "--log-format", "json"]);
 * ```
 */
import { MaqetError } from "../errors/maqet-error.ts";
import { HOST_NAME_PATTERN } from "../events/host-events.ts";

export interface AgentArgs {
  socket?: string;
  db?: string;
  dataDir?: string;
  runtimeDir?: string;
  logFormat: "text" | "json";
  group?: string;
  listen?: { host: string; port: number };
  tokenFile?: string;
  /** Seconds in-flight operations get at SIGTERM before the agent closes anyway (default 30). */
  graceSeconds: number;
  /** Cluster: this host's name (`--host`); with it or a label the agent joins (docs/cluster.md). */
  host?: string;
  /** Cluster: `--label k=v`, repeatable. */
  labels: string[];
  /** Cluster: lease time to live and self-fence grace, in milliseconds. */
  leaseTtlMs?: number;
  fenceAfterMs?: number;
  /** Live migration: the address this host's incoming QEMUs listen on (`--migration-address`). */
  migrationAddress?: string;
  help: boolean;
}

export const AGENT_FLAGS: ReadonlyArray<{ name: string; value?: string; description: string }> = [
  { name: "socket", value: "PATH", description: "unix socket to serve (default $XDG_RUNTIME_DIR/maqet/agent.sock)" },
  { name: "log-format", value: "text|json", description: "one line per request on stderr (default text)" },
  { name: "group", value: "NAME", description: "make the socket 0660 for this group (default 0600, owner only)" },
  {
    name: "listen",
    value: "HOST:PORT",
    description: "also serve TCP (bearer token) and the web console (prints its one-time login URL)",
  },
  {
    name: "token-file",
    value: "FILE",
    description: "the TCP token (a 0600 file); default: generated into the runtime dir",
  },
  { name: "grace", value: "SECONDS", description: "at SIGTERM, how long running operations may finish (default 30)" },
  { name: "host", value: "NAME", description: "cluster: join as this host (default name with --label: the hostname)" },
  {
    name: "label",
    value: "KEY=VALUE",
    description: "cluster: a label of this host, for add --constraint (repeatable)",
  },
  { name: "lease-ttl", value: "SECONDS", description: "cluster: host lease time to live (default 10)" },
  {
    name: "fence-after",
    value: "SECONDS",
    description: "cluster: self-fence this long after the lease ran out (default 5)",
  },
  {
    name: "migration-address",
    value: "ADDRESS",
    description: "live migration: the address other hosts reach this one at (default 127.0.0.1)",
  },
  { name: "db", value: "URL", description: "PostgreSQL server URL (default: embedded store)" },
  { name: "data-dir", value: "DIR", description: "data directory of the embedded store" },
  { name: "runtime-dir", value: "DIR", description: "root of per-VM runtime dirs (and of the default socket)" },
];

export function parseAgentArgs(argv: readonly string[]): AgentArgs {
  const args: AgentArgs = { logFormat: "text", graceSeconds: 30, help: false, labels: [] };
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i]!;
    if (token === "agent" && i === argv.indexOf("agent")) continue;
    if (token === "--help" || token === "-h") {
      args.help = true;
      continue;
    }
    if (token === "--json") continue;
    if (!token.startsWith("--")) throw usage(`unexpected argument '${token}'`);
    const eq = token.indexOf("=");
    const name = token.slice(2, eq === -1 ? undefined : eq);
    if (!AGENT_FLAGS.some((f) => f.name === name)) throw usage(`unknown option '--${name}'`);
    const value = eq === -1 ? argv[++i] : token.slice(eq + 1);
    if (value === undefined || value === "") throw usage(`option --${name} needs a value`);
    if (name === "socket") args.socket = value;
    else if (name === "db") args.db = value;
    else if (name === "data-dir") args.dataDir = value;
    else if (name === "runtime-dir") args.runtimeDir = value;
    else if (name === "group") args.group = value;
    else if (name === "token-file") args.tokenFile = value;
    else if (name === "host") {
      if (!HOST_NAME_PATTERN.test(value)) {
        throw usage(`--host takes a host name (letters, digits, . _ -; at most 63), got '${value}'`);
      }
      args.host = value;
    } else if (name === "label") args.labels.push(value);
    else if (name === "migration-address") {
      if (!/^[0-9A-Za-z.:_-]{1,253}$/.test(value)) {
        throw usage(`--migration-address takes an IP address or host name, got '${value}'`);
      }
      args.migrationAddress = value;
    } else if (name === "lease-ttl" || name === "fence-after") {
      const n = Number(value);
      if (!Number.isFinite(n) || n <= 0 || (name === "lease-ttl" && n < 1)) {
        throw usage(
          `--${name} must be a number of seconds${name === "lease-ttl" ? " (at least 1)" : ""} (got '${value}')`,
        );
      }
      if (name === "lease-ttl") args.leaseTtlMs = n * 1000;
      else args.fenceAfterMs = n * 1000;
    } else if (name === "log-format") {
      if (value !== "text" && value !== "json") throw usage(`--log-format must be text or json (got '${value}')`);
      args.logFormat = value;
    } else if (name === "grace") {
      const n = Number(value);
      if (!Number.isFinite(n) || n < 0) throw usage(`--grace must be a number of seconds (got '${value}')`);
      args.graceSeconds = n;
    } else if (name === "listen") args.listen = hostPort(value);
  }
  return args;
}

function hostPort(value: string): { host: string; port: number } {
  const m = /^(\[[^\]]+\]|[^:]+):(\d{1,5})$/.exec(value);
  const port = Number(m?.[2]);
  if (!m || port < 1 || port > 65535) throw usage(`--listen takes HOST:PORT, e.g. 127.0.0.1:7420 (got '${value}')`);
  return { host: m[1]!.replace(/^\[|\]$/g, ""), port };
}

function usage(problem: string): MaqetError {
  return new MaqetError("INVALID_ARGUMENT", `Invalid arguments: ${problem}. Run \`maqet agent --help\` for its usage.`);
}

/** `maqet agent --help`. */
export function agentHelp(): string {
  return [
    "Usage: maqet agent [options]",
    "",
    "Run the maqet agent in the foreground: it opens the store once, keeps every VM's actor live,",
    "supervises running QEMU, and serves the HTTP API on a unix socket. The CLI uses it when it",
    "answers. SIGTERM/SIGINT stop it gracefully; running VMs keep running.",
    "",
    "Options:",
    ...AGENT_FLAGS.map((f) => `  --${f.name}${f.value ? ` ${f.value}` : ""}`.padEnd(26) + f.description),
    "",
    "Examples:",
    "  maqet agent",
    "  maqet agent --log-format json",
    "  maqet agent --socket /run/maqet/agent.sock --group maqet",
    "  maqet agent --listen 127.0.0.1:7420 --token-file /etc/maqet/token",
    "  maqet agent --listen 127.0.0.1:8080    # then open the login URL it prints (docs/web-console.md)",
    "  maqet agent --db postgres://maqet@db/maqet --host lab1 --label zone=a",
    "",
    "See docs/agent.md (systemd units, the API) and docs/cluster.md (many hosts).",
  ].join("\n");
}
