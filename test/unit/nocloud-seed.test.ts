/**
 * The NoCloud seed: the ISO 9660 writer read back by an independent reader written here (both
 * directories: primary and Joliet), the seed's files (user-data with the key, meta-data), the
 * ssh user rule of cloud-init:, and the OpenSSH key format checked by ssh-keygen itself.
 */
import { execFileSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parse as parseYaml } from "yaml";
import { nocloudSeedFiles, nocloudSeedImage } from "../../src/config/nocloud-seed.ts";
import { parseVmConfig } from "../../src/config/parse-vm-config.ts";
import { buildIso9660Image, ISO_SECTOR } from "../../src/util/iso9660-image.ts";
import { formatEd25519Keys } from "../../src/util/openssh-key-format.ts";

interface ReadIso {
  label: string;
  jolietLabel?: string;
  primary: Map<string, string>;
  joliet: Map<string, string>;
}

/** Reads volume descriptors and the root directory of each (ECMA-119 §8.4, §9.1; Joliet SVD). */
function readIso(image: Uint8Array): ReadIso {
  const buf = Buffer.from(image);
  const result: ReadIso = { label: "", primary: new Map(), joliet: new Map() };
  for (let sector = 16; ; sector++) {
    const at = sector * ISO_SECTOR;
    expect(buf.toString("ascii", at + 1, at + 6)).toBe("CD001");
    const type = buf[at]!;
    if (type === 255) break;
    const joliet = type === 2 && buf.toString("ascii", at + 88, at + 91).startsWith("%/");
    const text = (from: number, to: number) =>
      joliet
        ? buf
            .subarray(at + from, at + to)
            .swap16()
            .toString("utf16le")
            .trim()
        : buf.toString("ascii", at + from, at + to).trim();
    if (type === 1) result.label = text(40, 72);
    if (joliet) result.jolietLabel = text(40, 72);
    expect(buf.readUInt32LE(at + 80)).toBe(image.length / ISO_SECTOR);
    expect(buf.readUInt32BE(at + 84)).toBe(image.length / ISO_SECTOR);
    const root = at + 156;
    const extent = buf.readUInt32LE(root + 2);
    const size = buf.readUInt32LE(root + 10);
    const files = joliet ? result.joliet : result.primary;
    for (let p = extent * ISO_SECTOR; p < extent * ISO_SECTOR + size; ) {
      const length = buf[p]!;
      if (length === 0) break;
      const idLength = buf[p + 32]!;
      const id = buf.subarray(p + 33, p + 33 + idLength);
      if (!(idLength === 1 && id[0]! <= 1)) {
        const name = joliet ? Buffer.from(id).swap16().toString("utf16le") : id.toString("ascii");
        const start = buf.readUInt32LE(p + 2) * ISO_SECTOR;
        expect(buf.readUInt32BE(p + 6)).toBe(buf.readUInt32LE(p + 2));
        files.set(name, buf.toString("utf8", start, start + buf.readUInt32LE(p + 10)));
        expect(buf[p + 25]! & 2).toBe(0);
      }
      p += length;
    }
  }
  return result;
}

describe("ISO 9660 writer", () => {
  it("reads back: label, names in both directories, contents", () => {
    const image = buildIso9660Image({
      volumeId: "cidata",
      files: [
        { name: "user-data", data: Buffer.from("#cloud-config\nhostname: a\n") },
        { name: "meta-data", data: Buffer.from("x".repeat(5000)) },
        { name: "empty", data: new Uint8Array(0) },
      ],
      date: new Date("2026-01-02T03:04:05Z"),
    });
    expect(image.length % ISO_SECTOR).toBe(0);
    const iso = readIso(image);
    expect(iso.label).toBe("cidata");
    expect(iso.jolietLabel).toBe("cidata");
    expect([...iso.joliet.keys()]).toEqual(["empty", "meta-data", "user-data"]);
    expect([...iso.primary.keys()]).toEqual(["EMPTY.;1", "META-DATA.;1", "USER-DATA.;1"]);
    expect(iso.joliet.get("user-data")).toBe("#cloud-config\nhostname: a\n");
    expect(iso.joliet.get("meta-data")).toBe("x".repeat(5000));
    expect(iso.primary.get("USER-DATA.;1")).toBe("#cloud-config\nhostname: a\n");
    expect(iso.joliet.get("empty")).toBe("");
  });

  it("is the same bytes for the same input; refuses names it cannot hold", () => {
    const input = { volumeId: "cidata", files: [{ name: "a", data: Buffer.from("1") }], date: new Date(0) };
    expect(Buffer.from(buildIso9660Image(input)).equals(Buffer.from(buildIso9660Image(input)))).toBe(true);
    expect(() => buildIso9660Image({ volumeId: "c i", files: [] })).toThrow(/volume id/);
    expect(() => buildIso9660Image({ volumeId: "c", files: [{ name: "a/b", data: new Uint8Array() }] })).toThrow(
      /file name/,
    );
    expect(() =>
      buildIso9660Image({
        volumeId: "c",
        files: [
          { name: "a", data: new Uint8Array() },
          { name: "A", data: new Uint8Array() },
        ],
      }),
    ).toThrow(/twice/);
  });
});

describe("NoCloud seed", () => {
  const vm = {
    vmId: "0b5c3f8e-4a1d-4c7e-9f00-3c2d1e0f9a8b",
    name: "web_1",
    publicKey: "ssh-ed25519 AAAAC3Nza maqet:web_1",
  };

  it("user-data is cloud-config with the key added; root logins allowed when ssh logs in as root", () => {
    const config = parseVmConfig("cloud-init:\n  ssh_authorized_keys: [ssh-rsa AAAB old]\n  runcmd: [[touch, /x]]\n", {
      baseDir: "/srv",
    });
    const files = nocloudSeedFiles(config.cloudInit!, vm);
    expect(files.userData.startsWith("#cloud-config\n")).toBe(true);
    const data = parseYaml(files.userData) as Record<string, unknown>;
    expect(data.ssh_authorized_keys).toEqual(["ssh-rsa AAAB old", vm.publicKey]);
    expect(data.runcmd).toEqual([["touch", "/x"]]);
    expect(data.disable_root).toBe(false);
    const meta = parseYaml(files.metaData) as Record<string, string>;
    expect(meta["local-hostname"]).toBe("web-1");
    expect(meta["instance-id"]).toMatch(new RegExp(`^iid-${vm.vmId}-[0-9a-f]{8}$`));
    // The config's own user-data is not changed by building the seed.
    expect(config.cloudInit!.userData.ssh_authorized_keys).toEqual(["ssh-rsa AAAB old"]);
  });

  it("users: get the key; ssh logs in as the first named user; a changed config changes the instance id", () => {
    const config = parseVmConfig("cloud-init:\n  users: [default, {name: ada, sudo: ALL}]\n", { baseDir: "/srv" });
    expect(config.cloudInit!.sshUser).toBe("ada");
    const files = nocloudSeedFiles(config.cloudInit!, vm);
    const data = parseYaml(files.userData) as { users: unknown[]; disable_root?: boolean };
    expect(data.users).toEqual(["default", { name: "ada", sudo: "ALL", ssh_authorized_keys: [vm.publicKey] }]);
    expect(data.disable_root).toBeUndefined();
    const other = nocloudSeedFiles(
      { ...config.cloudInit!, userData: { ...config.cloudInit!.userData, packages: ["nginx"] } },
      vm,
    );
    expect(parseYaml(other.metaData)["instance-id"]).not.toBe(parseYaml(files.metaData)["instance-id"]);
    expect(nocloudSeedFiles(config.cloudInit!, vm).metaData).toBe(files.metaData);
  });

  it.each([
    ["cloud-init: {}\n", "root"],
    ["cloud-init: true\n", "root"],
    ["cloud-init:\n  user: debian\n", "debian"],
    ["cloud-init:\n  user: {name: fedora}\n", "fedora"],
  ])("ssh user of %s", (yaml, user) => {
    expect(parseVmConfig(yaml, { baseDir: "/srv" }).cloudInit?.sshUser).toBe(user);
  });

  it.each([
    ["cloud-init: [a]\n", "cloud-init"],
    ["cloud-init: {users: {name: a}}\n", "cloud-init.users"],
    ["cloud-init: {users: [{name: Root!}]}\n", "cloud-init.users[0].name"],
    ["cloud-init: {user: {name: 5}}\n", "cloud-init.user.name"],
  ])("errors name the key: %s", (yaml, keyPath) => {
    expect(() => parseVmConfig(yaml, { baseDir: "/srv" })).toThrow(
      expect.objectContaining({ details: expect.objectContaining({ keyPath }) }),
    );
  });

  it("the image holds both files under label cidata", () => {
    const iso = readIso(nocloudSeedImage({ userData: "#cloud-config\n", metaData: "instance-id: i\n" }));
    expect(iso.label).toBe("cidata");
    expect(iso.joliet.get("user-data")).toBe("#cloud-config\n");
    expect(iso.joliet.get("meta-data")).toBe("instance-id: i\n");
  });
});

describe("OpenSSH ed25519 key format", () => {
  const { privateKey, publicKey } = generateKeyPairSync("ed25519");
  const jwk = privateKey.export({ format: "jwk" }) as { d: string; x: string };
  const texts = formatEd25519Keys(Buffer.from(jwk.d, "base64url"), Buffer.from(jwk.x, "base64url"), "maqet:web");

  it("the public line carries the raw public key", () => {
    const [type, blob, comment] = texts.publicKey.split(" ");
    expect([type, comment]).toEqual(["ssh-ed25519", "maqet:web"]);
    const raw = publicKey.export({ format: "der", type: "spki" }).subarray(-32);
    expect(Buffer.from(blob!, "base64").subarray(-32).equals(raw)).toBe(true);
    expect(texts.privateKey).toMatch(
      /^-----BEGIN OPENSSH PRIVATE KEY-----\n[A-Za-z0-9+/=\n]+-----END OPENSSH PRIVATE KEY-----\n$/,
    );
  });

  let sshKeygen = true;
  try {
    execFileSync("ssh-keygen", ["-?"], { stdio: "ignore" });
  } catch (error) {
    sshKeygen = (error as NodeJS.ErrnoException).code !== "ENOENT";
  }
  it.skipIf(!sshKeygen)(
    "ssh-keygen reads the private key and derives the same public key (skipped: no ssh-keygen)",
    () => {
      const dir = mkdtempSync(join(tmpdir(), "maqet-key-"));
      try {
        writeFileSync(join(dir, "id"), texts.privateKey, { mode: 0o600 });
        const derived = execFileSync("ssh-keygen", ["-y", "-f", join(dir, "id")], { encoding: "utf8" }).trim();
        expect(derived.split(" ").slice(0, 2)).toEqual(texts.publicKey.split(" ").slice(0, 2));
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
