/**
 * A VM's own SSH key pair, for `maqet ssh` and the NoCloud seed: ed25519, drawn with node:crypto
 * and written in OpenSSH's format (src/util/openssh-key-format.ts), created on first use in
 * `<dataDir>/vms/<vmId>/ssh/` (directories 0700, files 0600):
 *
 * - `id_ed25519`: the private key. Never printed, never in an event, a log or a command's result
 *   (results carry its path only).
 * - `id_ed25519.pub`: the public key (the seed's `ssh_authorized_keys`).
 * - `known_hosts`: the guest's host key as `ssh` learns it (StrictHostKeyChecking=accept-new);
 *   emptied at each start that builds a seed, since a guest may get a new host key per boot and a
 *   `0` host port changes between runs.
 *
 * The private key appears last (written aside, then renamed), so a key file that exists is whole.
 * `maqet rm` deletes the VM's directory under `<dataDir>/vms/` with the VM.
 *
 * @example
 * ```ts
 * const keys = createSshKeys({ root: "/home/ada/.local/share/maqet/vms" });
 * const key = await keys.ensure("0b5c3f8e-…", "web"); // { publicKey: "ssh-ed25519 AAAA… maqet:web", identityFile, … }
 * ```
 */
import { generateKeyPairSync } from "node:crypto";
import { chmod, mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import type { SshKeyFiles, SshKeyStore } from "../actors/ports.ts";
import { formatEd25519Keys } from "../util/openssh-key-format.ts";

export interface SshKeysOptions {
  /** `<dataDir>/vms`: each VM's keys go to `<root>/<vmId>/ssh/`. */
  root: string;
}

/** Where a VM's key files are, created or not (a path computation). */
export function sshKeyPaths(root: string, vmId: string): Omit<SshKeyFiles, "publicKey"> {
  const dir = join(root, vmId, "ssh");
  return {
    dir,
    identityFile: join(dir, "id_ed25519"),
    publicKeyFile: join(dir, "id_ed25519.pub"),
    knownHostsFile: join(dir, "known_hosts"),
  };
}

export function createSshKeys(options: SshKeysOptions): SshKeyStore {
  return {
    paths: (vmId) => sshKeyPaths(options.root, vmId),
    ensure: async (vmId, name) => {
      const paths = sshKeyPaths(options.root, vmId);
      await mkdir(paths.dir, { recursive: true, mode: 0o700 });
      await chmod(join(options.root, vmId), 0o700);
      await chmod(paths.dir, 0o700);
      const existing = await readFile(paths.publicKeyFile, "utf8").catch(() => undefined);
      const havePrivate = await readFile(paths.identityFile).then(
        () => true,
        () => false,
      );
      if (existing !== undefined && havePrivate) return { ...paths, publicKey: existing.trim() };
      const { privateKey } = generateKeyPairSync("ed25519");
      const jwk = privateKey.export({ format: "jwk" }) as { d: string; x: string };
      const texts = formatEd25519Keys(
        Buffer.from(jwk.d, "base64url"),
        Buffer.from(jwk.x, "base64url"),
        `maqet:${name}`,
      );
      const aside = `.tmp-${process.pid}-${Date.now()}`;
      try {
        await writeFile(paths.publicKeyFile + aside, `${texts.publicKey}\n`, { mode: 0o600, flag: "wx" });
        await writeFile(paths.identityFile + aside, texts.privateKey, { mode: 0o600, flag: "wx" });
        await rename(paths.publicKeyFile + aside, paths.publicKeyFile);
        await rename(paths.identityFile + aside, paths.identityFile);
      } finally {
        await rm(paths.publicKeyFile + aside, { force: true });
        await rm(paths.identityFile + aside, { force: true });
      }
      return { ...paths, publicKey: texts.publicKey };
    },
    forget: async (vmId) => {
      await rm(join(options.root, vmId), { recursive: true, force: true });
    },
    resetKnownHosts: async (vmId) => {
      const paths = sshKeyPaths(options.root, vmId);
      await mkdir(paths.dir, { recursive: true, mode: 0o700 });
      await writeFile(paths.knownHostsFile, "", { mode: 0o600 });
      await chmod(paths.knownHostsFile, 0o600);
    },
  };
}
