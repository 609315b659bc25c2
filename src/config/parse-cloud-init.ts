/**
 * `cloud-init:` → {@link CloudInitConfig}: the cloud-config user-data of a NoCloud seed, written
 * as a YAML mapping (what follows `#cloud-config` in a user-data file). `{}` (or `true`) asks
 * for a seed with only maqet's additions: the VM's SSH public key in `ssh_authorized_keys` (and in
 * each `users:` entry that is a mapping), an `instance-id` and the VM's name as `local-hostname`.
 *
 * The login `maqet ssh` uses is the first named user of `users:` (not `default`), else `user:`
 * (a name or `{name: …}`), else `root` — the account whose authorized keys maqet filled.
 *
 * Pure. Errors are CONFIG_INVALID with the key path (`cloud-init.users[0].name`).
 *
 * @example
 * ```ts
 * parseCloudInit({ users: [{ name: "ada", sudo: "ALL=(ALL) NOPASSWD:ALL" }] }, { source: "vm.yaml" })?.sshUser; // "ada"
 * ```
 */
import { type ConfigContext, configError } from "./config-errors.ts";
import type { CloudInitConfig } from "./vm-config.ts";

const USER_NAME = /^[a-z_][a-z0-9_-]{0,31}$/;

/**
 * Parses `cloud-init`; undefined when absent, null or `false`.
 *
 * @example
 * ```ts
 * parseCloudInit({}, { source: "vm.yaml" }); // { userData: {}, sshUser: "root" }
 * ```
 */
export function parseCloudInit(value: unknown, ctx: ConfigContext): CloudInitConfig | undefined {
  if (value === undefined || value === null || value === false) return undefined;
  if (value === true) return { userData: {}, sshUser: "root" };
  if (typeof value !== "object" || Array.isArray(value)) {
    configError(
      ctx,
      "cloud-init",
      "a mapping of cloud-config user-data (e.g. users:, packages:, runcmd:), or {} for a seed with only the SSH key",
      value,
    );
  }
  const userData = value as Record<string, unknown>;
  return { userData, sshUser: sshUserOf(userData, ctx) };
}

function sshUserOf(userData: Record<string, unknown>, ctx: ConfigContext): string {
  const users = userData.users;
  if (users !== undefined && users !== null) {
    if (!Array.isArray(users)) configError(ctx, "cloud-init.users", "a list of users (names or mappings)", users);
    for (const [i, user] of users.entries()) {
      const name = typeof user === "string" ? user : (user as { name?: unknown } | null)?.name;
      if (name === "default") continue;
      const at = typeof user === "string" ? `cloud-init.users[${i}]` : `cloud-init.users[${i}].name`;
      return checkName(name, at, ctx);
    }
  }
  const user = userData.user;
  if (user !== undefined && user !== null) {
    const name = typeof user === "string" ? user : (user as { name?: unknown }).name;
    return checkName(name, typeof user === "string" ? "cloud-init.user" : "cloud-init.user.name", ctx);
  }
  return "root";
}

function checkName(name: unknown, keyPath: string, ctx: ConfigContext): string {
  if (typeof name !== "string" || !USER_NAME.test(name)) {
    configError(ctx, keyPath, "a login name (lower-case letters, digits, '_', '-'; up to 32)", name);
  }
  return name;
}
