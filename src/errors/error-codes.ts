/**
 * Every error code maqet raises and the CLI exit code it maps to.
 * Documented one by one in docs/errors.md; add to this table, never rename an entry.
 *
 * Exit codes: 0 ok, 1 failure, 2 timeout, 3 invalid input or not found, 4 refused for security.
 *
 * @example
 * ```ts
 * exitCodeOf("VM_NOT_FOUND"); // 3
 * ```
 */
export const ERROR_CODES = {
  // invalid input or not found (3)
  INVALID_ARGUMENT: 3,
  CONFIG_NOT_FOUND: 3,
  CONFIG_INVALID: 3,
  VM_NOT_FOUND: 3,
  VM_EXISTS: 3,
  /** A file or directory a command needs does not exist (e.g. the parent of a new disk). */
  PATH_NOT_FOUND: 3,
  /** A VM has no storage entry of that name. */
  DRIVE_NOT_FOUND: 3,
  SNAPSHOT_NOT_FOUND: 3,
  /** The tag exists already and --overwrite was not given. */
  SNAPSHOT_EXISTS: 3,
  /** Snapshots need qcow2; the drive is raw (or a VirtFS share). */
  SNAPSHOT_UNSUPPORTED: 3,
  /** The agent has no route for that method and path. */
  ROUTE_NOT_FOUND: 3,
  /** A request body over the agent's size limit. */
  REQUEST_TOO_LARGE: 3,
  /** A host port of `ports:` is taken by another program (checked at start, before QEMU runs). */
  PORT_IN_USE: 3,
  // refused for security (4)
  PATH_REFUSED: 4,
  QMP_REFUSED: 4,
  /** A TCP request to the agent without the right bearer token. */
  UNAUTHORIZED: 4,
  /** A state-changing browser request whose `Origin` is not the agent's own (CSRF). */
  ORIGIN_REFUSED: 4,
  // timeouts (2)
  TIMEOUT: 2,
  QMP_TIMEOUT: 2,
  /** qemu-img ran past its time limit and was killed. */
  QEMU_IMG_TIMEOUT: 2,
  // failures (1)
  VM_INVALID_STATE: 1,
  /** Another live process holds the VM's lease. */
  VM_BUSY: 1,
  /** Another attach holds the VM's serial console writer seat (`console -i`); `--force` takes it. */
  CONSOLE_BUSY: 1,
  CONCURRENCY_CONFLICT: 1,
  EVENT_ID_CONFLICT: 1,
  STORE_LOCKED: 1,
  STORE_ERROR: 1,
  /** A projection (read model) stopped at an event it could not apply; its error is recorded. */
  PROJECTION_FAILED: 1,
  BINARY_NOT_FOUND: 1,
  QEMU_IMG_FAILED: 1,
  /** Not enough free space to create a disk. */
  INSUFFICIENT_SPACE: 1,
  /** A live snapshot job (QMP snapshot-save/load/delete) failed; QEMU's error is quoted. */
  SNAPSHOT_FAILED: 1,
  START_FAILED: 1,
  STOP_FAILED: 1,
  QMP_ERROR: 1,
  QMP_DISCONNECTED: 1,
  QMP_PROTOCOL: 1,
  PROCESS_ERROR: 1,
  /** `audit verify` found a broken link in the audit trail's hash chain. */
  AUDIT_TAMPERED: 1,
  /** Another agent serves this socket or data directory (its pid is named). */
  AGENT_RUNNING: 1,
  /** The agent named by --agent / MAQET_AGENT does not answer, or went away mid-request. */
  AGENT_UNAVAILABLE: 1,
  /** An append carried an owner epoch older (or newer) than the VM's: the VM was placed elsewhere. */
  STALE_EPOCH: 1,
  /** A multi-host feature was asked of the embedded store (PGlite is single-host). */
  CLUSTER_NEEDS_SERVER: 3,
  /** No host of that name in the cluster. */
  HOST_NOT_FOUND: 3,
  /** No host can take the VM (none up, none matching --constraint, or none with free capacity). */
  NO_HOST_AVAILABLE: 1,
  /** The operation is refused in the host's current state (mark-dead of a live host, rm of a host with VMs). */
  HOST_INVALID_STATE: 1,
  /** This agent lost its host lease: it takes no commands until it renews. */
  HOST_LEASE_LOST: 1,
  /** Live migration: the destination cannot see the VM's disks at the same path (shared storage needed). */
  MIGRATION_STORAGE_NOT_SHARED: 1,
  /** Live migration failed (QEMU's reason quoted); the VM keeps running on its source. */
  MIGRATION_FAILED: 1,
  /** `migrate --cancel` of a VM with no migration in flight in a process that can cancel it. */
  MIGRATION_NOT_RUNNING: 1,
  /** The migration was cancelled (`--cancel`, Ctrl-C); the VM keeps running on its source. */
  MIGRATION_CANCELLED: 1,
  INTERNAL: 1,
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export function exitCodeOf(code: ErrorCode): number {
  return ERROR_CODES[code];
}
