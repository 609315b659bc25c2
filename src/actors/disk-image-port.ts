/**
 * What the core needs from `qemu-img`: image facts, internal snapshots, conversion with progress.
 * `src/adapters/qemu-img.ts` implements it against the real binary; unit tests pass fakes.
 * Every operation takes an AbortSignal and an optional time limit; the adapter kills and reaps
 * qemu-img when either fires, and retries only transient failures (an image lock held by another
 * process, EAGAIN).
 *
 * @example
 * ```ts
 * const tags = (await tool.snapshotList("/srv/vms/web.qcow2", { shared: true })).map((s) => s.name);
 * ```
 */
import type { Observable } from "rxjs";
import type { ImageStamp, SnapshotRecord } from "../events/snapshot-events.ts";

export type ImageFormat = "qcow2" | "raw";

export interface ToolCallOptions {
  signal?: AbortSignal;
  /** Kill qemu-img after this long (default: the adapter's per-operation default). */
  timeoutMs?: number;
}

/** One internal snapshot of an image (`qemu-img info`'s `snapshots[]`, QMP query-block's too). */
export type ImageSnapshot = SnapshotRecord;

/**
 * One entry of `snapshots[]` as qemu-img info and QMP query-block print it.
 *
 * @example
 * ```ts
 * parseImageSnapshot({ id: "1", name: "s1", "vm-state-size": 0, "date-sec": 1, "date-nsec": 0, "vm-clock-sec": 0, "vm-clock-nsec": 0 });
 * ```
 */
export function parseImageSnapshot(value: unknown): ImageSnapshot {
  const s = (value ?? {}) as Record<string, unknown>;
  const num = (key: string) => (typeof s[key] === "number" ? (s[key] as number) : 0);
  return {
    name: String(s.name ?? ""),
    id: String(s.id ?? ""),
    vmStateSize: num("vm-state-size"),
    createdAt: num("date-sec") * 1000 + Math.floor(num("date-nsec") / 1e6),
    vmClockNs: num("vm-clock-sec") * 1e9 + num("vm-clock-nsec"),
  };
}

export interface ImageInfo {
  file: string;
  format: string;
  virtualSize: number;
  actualSize?: number;
  backingFile?: string;
  backingFormat?: string;
  dirty?: boolean;
  snapshots: ImageSnapshot[];
  /** True when the image was locked by another process and was read with `-U` (force-share). */
  inUse: boolean;
  /** The whole `qemu-img info --output=json` object. */
  raw: Record<string, unknown>;
}

export interface ImageCheck {
  file: string;
  format?: string;
  /** Exit status of `qemu-img check`: 0 clean, 2 corruption, 3 leaked clusters only, 63 the format has nothing to check (raw). */
  status: "clean" | "corrupt" | "leaks" | "unsupported";
  checkErrors: number;
  corruptions: number;
  leaks: number;
  imageEndOffset?: number;
  /** The whole `qemu-img check --output=json` object. */
  raw: Record<string, unknown>;
}

export interface CreateImageSpec {
  format: ImageFormat;
  /** qemu-img size (`10G`, `512M`, bytes); optional with a backing file (it inherits the size). */
  size?: string;
  backingFile?: string;
  backingFormat?: ImageFormat;
  /** Creation options (`-o key=value`), e.g. `{ cluster_size: "64K" }`. Preallocation is off unless set here. */
  options?: Readonly<Record<string, string | number | boolean>>;
}

export interface ConvertSpec {
  outputFormat: ImageFormat;
  /** Source format (default: probed by qemu-img). */
  sourceFormat?: ImageFormat;
  /** Compress the output (qcow2 only). */
  compress?: boolean;
}

/** One progress reading of a long operation, 0–100 and never decreasing. */
export interface Progress {
  percent: number;
}

/** The qemu-img operations the core uses. */
export interface DiskImageTool {
  /** `qemu-img --version` (read once per adapter). */
  version(options?: ToolCallOptions): Promise<string>;
  /** `qemu-img info --output=json`; with `shared` (or when the image turns out to be locked) reads with `-U`. */
  info(file: string, options?: ToolCallOptions & { shared?: boolean }): Promise<ImageInfo>;
  /** `qemu-img check --output=json`; corruption and leaks are results, not errors. */
  check(file: string, options?: ToolCallOptions & { format?: ImageFormat }): Promise<ImageCheck>;
  /** `qemu-img create` of a file that the caller has claimed (or that does not exist). */
  create(file: string, spec: CreateImageSpec, options?: ToolCallOptions): Promise<void>;
  /** `qemu-img resize`; `shrink` is needed to make an image smaller. */
  resize(
    file: string,
    size: string,
    options?: ToolCallOptions & { format?: ImageFormat; shrink?: boolean },
  ): Promise<void>;
  /** `qemu-img convert -p`: a cold Observable; subscribing starts it, unsubscribing kills it. Ends with 100. */
  convert(source: string, target: string, spec: ConvertSpec, options?: ToolCallOptions): Observable<Progress>;
  /** Internal snapshots of an image; `shared` reads an image a running VM holds (`-U`). */
  snapshotList(file: string, options?: ToolCallOptions & { shared?: boolean }): Promise<ImageSnapshot[]>;
  snapshotCreate(file: string, tag: string, options?: ToolCallOptions): Promise<void>;
  /** Reverts the image to the snapshot (`qemu-img snapshot -a`). */
  snapshotApply(file: string, tag: string, options?: ToolCallOptions): Promise<void>;
  snapshotDelete(file: string, tag: string, options?: ToolCallOptions): Promise<void>;
}

/** What changes when anything writes an image: tells a stale snapshot catalogue entry from a fresh one. */
export type ImageFingerprint = ImageStamp;

/** Cheap facts about image files that do not run qemu-img. */
export interface ImageFiles {
  /** undefined when the file does not exist. */
  fingerprint(file: string): Promise<ImageFingerprint | undefined>;
}
