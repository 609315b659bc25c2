/**
 * Ed25519 keys in OpenSSH's own text forms: the `openssh-key-v1` private key file (unencrypted,
 * as `ssh-keygen -t ed25519 -N ''` writes it) and the one-line public key
 * (`ssh-ed25519 AAAA… comment`). OpenSSH reads PKCS#8 PEM ed25519 keys only in recent releases,
 * so maqet writes the format every OpenSSH since 6.5 reads. Pure: the key bytes come from the
 * caller (src/adapters/ssh-keys.ts draws them with node:crypto).
 *
 * Format (PROTOCOL.key in OpenSSH): "openssh-key-v1\0", cipher "none", kdf "none", kdf options "",
 * one key, the public key blob, then the private section: two equal check words, the key type,
 * the public key, the 64-byte private key (seed ‖ public), the comment, and padding 1, 2, 3… to
 * a multiple of 8.
 *
 * @example
 * ```ts
 * const { privateKey, publicKey } = formatEd25519Keys(seed, pub, "maqet:web");
 * // privateKey starts with "-----BEGIN OPENSSH PRIVATE KEY-----"
 * // publicKey is "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI… maqet:web"
 * ```
 */

export interface OpenSshKeyTexts {
  /** The private key file's text (PEM-style armour, 70-column base64). */
  privateKey: string;
  /** `ssh-ed25519 <base64> <comment>`, one line, no newline. */
  publicKey: string;
}

/**
 * Both texts for an ed25519 key; `check` is the private section's check word (random in
 * ssh-keygen; any value works).
 *
 * @example
 * ```ts
 * formatEd25519Keys(new Uint8Array(32), new Uint8Array(32), "test").publicKey.split(" ")[0]; // "ssh-ed25519"
 * ```
 */
export function formatEd25519Keys(
  seed: Uint8Array,
  publicKey: Uint8Array,
  comment: string,
  check = 0x6d617174,
): OpenSshKeyTexts {
  if (seed.length !== 32 || publicKey.length !== 32) {
    throw new TypeError("An ed25519 key has a 32-byte seed and a 32-byte public key.");
  }
  if (/[\r\n]/.test(comment)) throw new TypeError("A key comment is one line.");
  const type = utf8("ssh-ed25519");
  const publicBlob = concat(string(type), string(publicKey));
  const secret = concat(seed, publicKey);
  let section = concat(u32(check), u32(check), string(type), string(publicKey), string(secret), string(utf8(comment)));
  const padding = (8 - (section.length % 8)) % 8;
  section = concat(
    section,
    Uint8Array.from({ length: padding }, (_, i) => i + 1),
  );
  const body = concat(
    utf8("openssh-key-v1\0"),
    string(utf8("none")),
    string(utf8("none")),
    string(new Uint8Array(0)),
    u32(1),
    string(publicBlob),
    string(section),
  );
  const lines = base64(body).match(/.{1,70}/g) ?? [];
  return {
    privateKey: `-----BEGIN OPENSSH PRIVATE KEY-----\n${lines.join("\n")}\n-----END OPENSSH PRIVATE KEY-----\n`,
    publicKey: `ssh-ed25519 ${base64(publicBlob)}${comment ? ` ${comment}` : ""}`,
  };
}

function utf8(text: string): Uint8Array {
  return new TextEncoder().encode(text);
}

function u32(value: number): Uint8Array {
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, value >>> 0, false);
  return out;
}

/** SSH wire `string`: a 32-bit big-endian length, then the bytes. */
function string(bytes: Uint8Array): Uint8Array {
  return concat(u32(bytes.length), bytes);
}

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}
