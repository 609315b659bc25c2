/**
 * A small ISO 9660 image writer: one root directory of regular files, with a Joliet supplementary
 * volume descriptor so names keep their case and hyphens (`user-data`, `meta-data`). Enough for a
 * cloud-init NoCloud seed (volume label `cidata`), which is why maqet writes it itself instead of
 * running `genisoimage`/`xorriso`: no shell, no extra host package, and the bytes are the same for
 * the same input (the date is the caller's).
 *
 * Layout (2048-byte sectors): 0–15 system area (zeros), 16 primary volume descriptor, 17 Joliet
 * descriptor, 18 terminator, 19–22 the two path tables of each (L and M), 23 primary root
 * directory, 24 Joliet root directory, then the files' data (each starting on a sector, shared
 * by both directories). Primary names are upper case with `.;1` (`USER-DATA.;1`): Linux shows
 * them as `user-data` even when it ignores Joliet.
 *
 * Pure: no I/O. Read back by test/unit/iso9660-image.test.ts and mounted by the Linux test guest.
 *
 * @example
 * ```ts
 * const iso = buildIso9660Image({
 *   volumeId: "cidata",
 *   files: [{ name: "meta-data", data: new TextEncoder().encode("instance-id: web\n") }],
 * });
 * // write iso to seed.iso and attach it as a read-only drive
 * ```
 */

/** One file in the image's root directory. */
export interface IsoFile {
  /** 1–64 characters, no `/`, `;` or NUL. */
  name: string;
  data: Uint8Array;
}

export interface IsoImageInput {
  /** The volume label (up to 16 characters for Joliet), e.g. `cidata`. */
  volumeId: string;
  files: readonly IsoFile[];
  /** Recorded as the creation and modification date of everything. Default: 1970-01-01. */
  date?: Date;
}

/** Bytes per logical sector. */
export const ISO_SECTOR = 2048;

const FIRST_DATA_SECTOR = 25;
const NAME_PATTERN = /^[^/;\0]{1,64}$/;

/**
 * Builds the image; throws a TypeError for a name or label it cannot represent.
 *
 * @example
 * ```ts
 * buildIso9660Image({ volumeId: "cidata", files: [] }).length; // 25 * 2048
 * ```
 */
export function buildIso9660Image(input: IsoImageInput): Uint8Array {
  if (!/^[A-Za-z0-9_.-]{1,16}$/.test(input.volumeId)) {
    throw new TypeError(`ISO volume id ${JSON.stringify(input.volumeId)}: use 1-16 letters, digits, '_', '.', '-'.`);
  }
  const names = new Set<string>();
  for (const file of input.files) {
    if (!NAME_PATTERN.test(file.name) || file.name === "." || file.name === "..") {
      throw new TypeError(`ISO file name ${JSON.stringify(file.name)}: use 1-64 characters without '/', ';' or NUL.`);
    }
    if (names.has(file.name.toUpperCase())) throw new TypeError(`ISO file name ${file.name} is given twice.`);
    names.add(file.name.toUpperCase());
  }
  const date = input.date ?? new Date(0);
  // Files in name order (both directories must be sorted), each at its own extent.
  const files = [...input.files].sort((a, b) => compareBytes(primaryName(a.name), primaryName(b.name)));
  let next = FIRST_DATA_SECTOR;
  const extents = files.map((file) => {
    const at = next;
    next += Math.max(1, Math.ceil(file.data.length / ISO_SECTOR));
    return at;
  });
  const totalSectors = next;
  const image = new Uint8Array(totalSectors * ISO_SECTOR);
  const view = new DataView(image.buffer);

  const primaryRoot = 23;
  const jolietRoot = 24;
  writeDescriptor(image, view, 16, {
    joliet: false,
    volumeId: input.volumeId,
    totalSectors,
    root: primaryRoot,
    pathL: 19,
    pathM: 20,
    date,
  });
  writeDescriptor(image, view, 17, {
    joliet: true,
    volumeId: input.volumeId,
    totalSectors,
    root: jolietRoot,
    pathL: 21,
    pathM: 22,
    date,
  });
  // Volume descriptor set terminator.
  image.set([255, ...ascii("CD001"), 1], 18 * ISO_SECTOR);
  writePathTables(image, view, 19, 20, primaryRoot);
  writePathTables(image, view, 21, 22, jolietRoot);

  const jolietOrder = [...files.keys()].sort((a, b) => compareBytes(ucs2(files[a]!.name), ucs2(files[b]!.name)));
  writeDirectory(
    image,
    view,
    primaryRoot,
    date,
    files.map((file, i) => ({ id: ascii(primaryName(file.name)), extent: extents[i]!, size: file.data.length })),
  );
  writeDirectory(
    image,
    view,
    jolietRoot,
    date,
    jolietOrder.map((i) => ({ id: ucs2(files[i]!.name), extent: extents[i]!, size: files[i]!.data.length })),
  );
  files.forEach((file, i) => {
    image.set(file.data, extents[i]! * ISO_SECTOR);
  });
  return image;
}

/** The primary (ISO 9660) identifier of a file: upper case, `.` when it has none, version `;1`. */
export function primaryName(name: string): string {
  const upper = name.toUpperCase().replace(/[^A-Z0-9_.-]/g, "_");
  return `${upper.includes(".") ? upper : `${upper}.`};1`;
}

interface DescriptorInput {
  joliet: boolean;
  volumeId: string;
  totalSectors: number;
  root: number;
  pathL: number;
  pathM: number;
  date: Date;
}

function writeDescriptor(image: Uint8Array, view: DataView, sector: number, d: DescriptorInput): void {
  const at = sector * ISO_SECTOR;
  const text = (offset: number, length: number, value: string) => {
    if (d.joliet) {
      // UCS-2 big endian, padded with UCS-2 spaces.
      const bytes = ucs2(value.padEnd(length / 2, " ").slice(0, length / 2));
      image.set(bytes, at + offset);
    } else {
      image.set(ascii(value.padEnd(length, " ").slice(0, length)), at + offset);
    }
  };
  image.set([d.joliet ? 2 : 1, ...ascii("CD001"), 1], at);
  text(8, 32, "LINUX");
  text(40, 32, d.volumeId);
  both32(view, at + 80, d.totalSectors);
  // Joliet level 3 (UCS-2): the escape sequence "%/E".
  if (d.joliet) image.set(ascii("%/E"), at + 88);
  both16(view, at + 120, 1);
  both16(view, at + 124, 1);
  both16(view, at + 128, ISO_SECTOR);
  both32(view, at + 132, 10); // path table size: one record of 10 bytes (the root)
  view.setUint32(at + 140, d.pathL, true);
  view.setUint32(at + 148, d.pathM, false);
  writeRecord(image, view, at + 156, {
    id: new Uint8Array([0]),
    extent: d.root,
    size: ISO_SECTOR,
    directory: true,
    date: d.date,
  });
  text(190, 128, "");
  text(318, 128, "");
  text(446, 128, "");
  text(574, 128, "MAQET");
  text(702, 36, "");
  text(739, 36, "");
  text(776, 36, "");
  const stamp = longDate(d.date);
  image.set(stamp, at + 813);
  image.set(stamp, at + 830);
  image.set([...ascii("0000000000000000"), 0], at + 847);
  image.set([...ascii("0000000000000000"), 0], at + 864);
  image[at + 881] = 1; // file structure version
}

function writePathTables(image: Uint8Array, view: DataView, lSector: number, mSector: number, root: number): void {
  for (const [sector, little] of [
    [lSector, true],
    [mSector, false],
  ] as const) {
    const at = sector * ISO_SECTOR;
    image[at] = 1; // identifier length
    view.setUint32(at + 2, root, little);
    view.setUint16(at + 6, 1, little); // parent: itself
    image[at + 8] = 0; // the root's identifier
  }
}

interface Entry {
  id: Uint8Array;
  extent: number;
  size: number;
}

function writeDirectory(image: Uint8Array, view: DataView, sector: number, date: Date, entries: Entry[]): void {
  let at = sector * ISO_SECTOR;
  const end = at + ISO_SECTOR;
  for (const id of [0, 1]) {
    at += writeRecord(image, view, at, {
      id: new Uint8Array([id]),
      extent: sector,
      size: ISO_SECTOR,
      directory: true,
      date,
    });
  }
  for (const entry of entries) {
    const length = recordLength(entry.id.length);
    if (at + length > end) throw new TypeError("Too many files for a one-sector ISO root directory.");
    at += writeRecord(image, view, at, { ...entry, directory: false, date });
  }
}

function recordLength(idLength: number): number {
  return 33 + idLength + (idLength % 2 === 0 ? 1 : 0);
}

function writeRecord(
  image: Uint8Array,
  view: DataView,
  at: number,
  r: { id: Uint8Array; extent: number; size: number; directory: boolean; date: Date },
): number {
  const length = recordLength(r.id.length);
  image[at] = length;
  both32(view, at + 2, r.extent);
  both32(view, at + 10, r.size);
  const d = r.date;
  image.set(
    [
      d.getUTCFullYear() - 1900,
      d.getUTCMonth() + 1,
      d.getUTCDate(),
      d.getUTCHours(),
      d.getUTCMinutes(),
      d.getUTCSeconds(),
      0,
    ],
    at + 18,
  );
  image[at + 25] = r.directory ? 2 : 0;
  both16(view, at + 28, 1);
  image[at + 32] = r.id.length;
  image.set(r.id, at + 33);
  return length;
}

function longDate(d: Date): number[] {
  const two = (n: number) => String(n).padStart(2, "0");
  const digits = `${String(d.getUTCFullYear()).padStart(4, "0")}${two(d.getUTCMonth() + 1)}${two(d.getUTCDate())}${two(d.getUTCHours())}${two(d.getUTCMinutes())}${two(d.getUTCSeconds())}00`;
  return [...ascii(digits), 0];
}

function both16(view: DataView, at: number, value: number): void {
  view.setUint16(at, value, true);
  view.setUint16(at + 2, value, false);
}

function both32(view: DataView, at: number, value: number): void {
  view.setUint32(at, value, true);
  view.setUint32(at + 4, value, false);
}

function ascii(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0) & 0x7f);
}

function ucs2(text: string): Uint8Array {
  const out = new Uint8Array(text.length * 2);
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    out[2 * i] = code >> 8;
    out[2 * i + 1] = code & 0xff;
  }
  return out;
}

function compareBytes(a: string | Uint8Array, b: string | Uint8Array): number {
  const x = typeof a === "string" ? ascii(a) : a;
  const y = typeof b === "string" ? ascii(b) : b;
  for (let i = 0; i < Math.min(x.length, y.length); i++) if (x[i] !== y[i]) return x[i]! - y[i]!;
  return x.length - y.length;
}
