/**
 * The JSON Schema (draft 2020-12) of a VM config file, for editors: point YAML language servers
 * at it (`# yaml-language-server: $schema=…`) and keys complete and typos are flagged before
 * `maqet add`. `maqet schema` prints it; the package ships it as schema/vm-config.schema.json.
 * A test checks its keys against the parser's (test/unit/vm-config-schema.test.ts), so the two
 * cannot drift; the parser stays the authority on values (it checks more than a schema can say).
 *
 * @example
 * ```ts
 * import { vmConfigSchema } from "maqet";
 * Object.keys(vmConfigSchema().properties); // ["name", "binary", "memory", …]
 * ```
 */

const SIZE = "^[0-9]+[KMGTkmgt]?$";

const argumentItem = {
  description:
    "A QEMU option as MAQET writes it: `enable-kvm`, `{smp: 2}`, `{device: {driver: e1000, netdev: n0}}`, `{display: gtk, zoom-to-fit: on}` (the first key names the option).",
  anyOf: [
    { type: "string", minLength: 1 },
    { type: "object", minProperties: 1 },
  ],
};

const diskEntry = {
  type: "object",
  description:
    "A disk image (qcow2 or raw; created at first start when missing, size default 10G), or a CD-ROM (media: cdrom).",
  properties: {
    name: { type: "string", pattern: "^[A-Za-z][A-Za-z0-9_.-]{0,30}$", description: "drive id (default hdd<i>)" },
    type: { enum: ["qcow2", "raw"], description: "image format (virtfs: a shared directory instead)" },
    // `type` may be left out for `media: cdrom` (raw).
    file: { type: "string", description: "image path, relative to the config file (default <name>.<type>)" },
    size: {
      anyOf: [
        { type: "string", pattern: SIZE },
        { type: "integer", minimum: 0 },
      ],
      description: "virtual size for creation, e.g. 10G",
    },
    interface: {
      enum: ["virtio", "sata", "ide", "scsi", "none"],
      description: "how the guest sees it (default virtio)",
    },
    backing_file: { type: "string", description: "create as a qcow2 overlay on this image (relative to the image)" },
    backing_format: { enum: ["qcow2", "raw"], description: "the backing image's format (default qcow2)" },
    options: {
      type: "object",
      description: "qemu-img create -o options, e.g. {cluster_size: 64K}",
      additionalProperties: { type: ["string", "number", "boolean"] },
    },
    media: {
      const: "cdrom",
      description: "a read-only CD-ROM drive for an ISO (type raw, interface ide/sata/scsi, never created)",
    },
  },
  anyOf: [{ required: ["type"] }, { required: ["media"] }],
  additionalProperties: false,
};

const virtfsEntry = {
  type: "object",
  description: "A host directory shared with the guest over 9p.",
  properties: {
    type: { const: "virtfs" },
    name: { type: "string", pattern: "^[A-Za-z][A-Za-z0-9_.-]{0,30}$" },
    path: { type: "string", description: "host directory, relative to the config file" },
    mount_tag: { type: "string", pattern: "^[A-Za-z0-9_.-]{1,31}$", description: "tag the guest mounts" },
    security_model: { enum: ["passthrough", "mapped-xattr", "mapped-file", "mapped", "none"] },
    readonly: { type: ["boolean", "string"] },
    options: { type: "object", description: "further -virtfs options (mount_tag, security_model, readonly, id)" },
  },
  required: ["type", "path"],
  additionalProperties: false,
};

const qmpRules = {
  type: "object",
  description: "Which QMP commands may run on this VM (docs/security.md).",
  properties: {
    allow: { type: "array", items: { type: "string" }, description: "names, prefixes (query-*) or tiers (@safe)" },
    deny: { type: "array", items: { type: "string" } },
  },
  additionalProperties: false,
};

/** A JSON Schema (draft 2020-12) node, as far as maqet writes one. */
export interface JsonSchema {
  $schema?: string;
  $id?: string;
  title?: string;
  description?: string;
  type?: string | readonly string[];
  properties?: Record<string, JsonSchema>;
  items?: JsonSchema;
  oneOf?: readonly JsonSchema[];
  anyOf?: readonly JsonSchema[];
  enum?: readonly unknown[];
  additionalProperties?: boolean | JsonSchema;
  [keyword: string]: unknown;
}

/** The schema object (a fresh copy each call). */
export function vmConfigSchema(): JsonSchema & { properties: Record<string, JsonSchema> } {
  return {
    $schema: "https://json-schema.org/draft/2020-12/schema",
    $id: "https://maqet.dev/schema/vm-config.schema.json",
    title: "maqet VM config",
    description: "A VM for `maqet add`: MAQET-compatible YAML (docs/config.md).",
    type: "object",
    properties: {
      name: { type: "string", pattern: "^[A-Za-z0-9_][A-Za-z0-9._-]{0,62}$", description: "VM name" },
      binary: { type: "string", description: "qemu-system binary: a name on PATH or a path" },
      memory: {
        anyOf: [
          { type: "string", pattern: "^[1-9][0-9]*[KMGTkmgt]$" },
          { type: "integer", minimum: 1 },
        ],
        description: "RAM, e.g. 512M or 4G (a bare number is bytes, as in MAQET)",
      },
      cpu: { type: "integer", minimum: 1, maximum: 256, description: "vCPUs" },
      display: { type: "string", description: "QEMU -display (e.g. none, gtk)" },
      ha: {
        enum: ["restart", "none"],
        description: "cluster HA: restart on another host once this VM's host is confirmed fenced (docs/cluster.md)",
      },
      vga: { type: "string", description: "QEMU -vga (e.g. std, virtio, none)" },
      machine: { type: "string", description: "QEMU -machine (e.g. q35)" },
      accel: { enum: ["auto", "kvm", "tcg"], description: "accelerator (default auto: KVM when usable)" },
      kernel: { type: "string", description: "direct kernel boot: the kernel image" },
      initrd: { type: "string", description: "initrd (with kernel)" },
      append: { type: "string", description: "kernel command line (with kernel)" },
      log_file: { type: "string", description: "QEMU's output log (default <runtime dir>/qemu.log)" },
      args: {
        type: "array",
        items: { type: ["string", "number"] },
        description: "extra QEMU argv words, appended as written",
      },
      arguments: { type: "array", items: argumentItem, description: "MAQET's structured QEMU options" },
      storage: {
        type: "array",
        description: "disks and VirtFS shares",
        // Disjoint by `type` (qcow2/raw vs virtfs), so exactly one matches.
        items: { oneOf: [diskEntry, virtfsEntry] },
      },
      ports: {
        type: "array",
        description:
          'host→guest port forwards over a user-mode NIC: "2222:22", "127.0.0.1:8080:80/tcp", "0:22" (a free host port), "5353:53/udp"; default host address 127.0.0.1',
        items: {
          anyOf: [
            { type: "string", pattern: "^((\\d{1,3}\\.){3}\\d{1,3}:)?(\\d*:)?\\d+(/(tcp|udp))?$" },
            { type: "integer", minimum: 1, maximum: 65535 },
          ],
        },
      },
      "cloud-init": {
        type: ["object", "boolean", "null"],
        description:
          "cloud-config user-data for a NoCloud seed (label cidata) attached read-only; maqet adds the VM's SSH key to ssh_authorized_keys",
      },
      qmp: qmpRules,
      description: { type: "string", description: "free text (MAQET metadata; kept out of the VM)" },
      tags: {
        anyOf: [{ type: "string" }, { type: "array", items: { type: "string" } }],
        description: "MAQET metadata, ignored",
      },
      parameters: { type: "object", description: "MAQET metadata, ignored" },
      network: { type: ["object", "array"], description: "ignored (MAQET never acted on it); use arguments" },
      plain_arguments: { type: ["string", "array"], description: "ignored legacy MAQET key; use args" },
    },
    additionalProperties: false,
  };
}
