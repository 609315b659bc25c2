/**
 * The event envelope: what every stored fact carries besides its own data.
 *
 * @example
 * ```ts
 * const e: NewEvent = { type: "vm.started", schemaVersion: 1, data: { pid: 42 } };
 * ```
 */

/** Who caused an event: the OS user and process that appended it. */
export interface EventActor {
  user: string;
  uid: number;
  host: string;
  pid: number;
}

export interface EventMetadata {
  actor: EventActor;
  /** Groups every event one user operation produced (one CLI call, one library call). */
  correlationId?: string;
  /** The event id (or command id) that directly caused this event. */
  causationId?: string;
  /** Which face produced it: "cli", "library", "agent", "test"... */
  source?: string;
  /**
   * The owner epoch the writer holds for this VM (a cluster agent stamps it on its VMs' events):
   * the store refuses the append unless it is the VM's current epoch (STALE_EPOCH).
   */
  epoch?: number;
  [key: string]: unknown;
}

/** An event to append. `id` is generated when absent; retries should reuse it. */
export interface NewEvent<TType extends string = string, TData = unknown> {
  id?: string;
  type: TType;
  schemaVersion: number;
  data: TData;
  metadata?: Partial<EventMetadata>;
}

/** An event as the store returns it. Stream versions are 0-based and gapless. */
export interface StoredEvent<TType extends string = string, TData = unknown> {
  id: string;
  streamId: string;
  streamVersion: number;
  globalPosition: number;
  type: TType;
  schemaVersion: number;
  data: TData;
  metadata: EventMetadata;
  recordedAt: Date;
}

/** The category of a stream id: the part before the first dash (`vm-1234` -> `vm`). */
export function categoryOf(streamId: string): string {
  const dash = streamId.indexOf("-");
  return dash === -1 ? streamId : streamId.slice(0, dash);
}
