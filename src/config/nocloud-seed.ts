/**
 * The NoCloud seed of a VM with `cloud-init:`: `user-data` (the config's cloud-config plus
 * maqet's SSH public key) and `meta-data` (instance id and host name), in an ISO 9660 image
 * labelled `cidata`, which cloud-init's NoCloud data source finds by its label.
 *
 * What maqet adds to the user-data:
 * - the VM's public key at the end of the top-level `ssh_authorized_keys` (the default user's,
 *   and root's), and of every `users:` mapping's `ssh_authorized_keys`;
 * - `disable_root: false` when `maqet ssh` logs in as root (no user named) and the config does
 *   not say otherwise: cloud images refuse root logins by default.
 *
 * `instance-id` is `iid-<vmId>-<hash of the user-data>`: the same config keeps the id (cloud-init
 * does its per-instance setup once), a changed one (`maqet apply`) gets it again.
 *
 * Pure: the image is built in memory (src/util/iso9660-image.ts); the start writes it.
 *
 * @example
 * ```ts
 * const files = nocloudSeedFiles(config.cloudInit, { vmId, name: "web", publicKey });
 * files.userData.startsWith("#cloud-config\n"); // true
 * const iso = nocloudSeedImage(files);
 * ```
 */
import { stringify } from "yaml";
import { buildIso9660Image } from "../util/iso9660-image.ts";
import type { CloudInitConfig } from "./vm-config.ts";

/** The seed's volume label (cloud-init also accepts CIDATA). */
export const SEED_LABEL = "cidata";

export interface NocloudSeedFiles {
  userData: string;
  metaData: string;
}

/**
 * The two files' text.
 *
 * @example
 * ```ts
 * nocloudSeedFiles({ userData: {}, sshUser: "root" }, { vmId: "0b5c…", name: "web", publicKey: "ssh-ed25519 AAAA… maqet:web" }).userData;
 * // "#cloud-config\nssh_authorized_keys:\n  - ssh-ed25519 AAAA… maqet:web\ndisable_root: false\n"
 * ```
 */
export function nocloudSeedFiles(
  cloudInit: CloudInitConfig,
  vm: { vmId: string; name: string; publicKey: string },
): NocloudSeedFiles {
  const data: Record<string, unknown> = structuredClone(cloudInit.userData);
  data.ssh_authorized_keys = [...asList(data.ssh_authorized_keys), vm.publicKey];
  if (Array.isArray(data.users)) {
    data.users = data.users.map((user: unknown) =>
      typeof user === "object" && user !== null && !Array.isArray(user)
        ? {
            ...user,
            ssh_authorized_keys: [...asList((user as Record<string, unknown>).ssh_authorized_keys), vm.publicKey],
          }
        : user,
    );
  }
  if (cloudInit.sshUser === "root" && data.disable_root === undefined) data.disable_root = false;
  const userData = `#cloud-config\n${stringify(data, { lineWidth: 0 })}`;
  const metaData = stringify({
    "instance-id": `iid-${vm.vmId}-${fnv1a(userData)}`,
    "local-hostname": hostnameOf(vm.name),
  });
  return { userData, metaData };
}

/**
 * The ISO 9660 image with both files, labelled `cidata`.
 *
 * @example
 * ```ts
 * nocloudSeedImage({ userData: "#cloud-config\n", metaData: "instance-id: x\n" }).length % 2048; // 0
 * ```
 */
export function nocloudSeedImage(files: NocloudSeedFiles, date?: Date): Uint8Array {
  const encoder = new TextEncoder();
  return buildIso9660Image({
    volumeId: SEED_LABEL,
    files: [
      { name: "user-data", data: encoder.encode(files.userData) },
      { name: "meta-data", data: encoder.encode(files.metaData) },
    ],
    date,
  });
}

function asList(value: unknown): unknown[] {
  if (value === undefined || value === null) return [];
  return Array.isArray(value) ? value : [value];
}

/** A VM name as a host name: letters, digits and '-' (a '.' or '_' becomes '-'). */
function hostnameOf(name: string): string {
  return (
    name
      .replace(/[^A-Za-z0-9-]/g, "-")
      .replace(/^-+|-+$/g, "")
      .slice(0, 63) || "maqet"
  );
}

/** 32-bit FNV-1a as 8 hex digits: a change marker, not a security hash. */
function fnv1a(text: string): string {
  let hash = 0x811c9dc5;
  for (const byte of new TextEncoder().encode(text)) {
    hash ^= byte;
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return hash.toString(16).padStart(8, "0");
}
