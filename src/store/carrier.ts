/**
 * Riding along another writer's commit: mutations that need no check of
 * their own (raising a counter with `max`, say) can be added to a commit some
 * other writer makes anyway, instead of paying a durable commit of their own.
 * The vault's group commit carries the limiter's releases this way.
 */

/** What a rider adds to one commit, and learns about it afterwards. */
export interface Ride {
  /** Unconditional mutations, safe to apply twice, late or out of order (`max`, `delete`). */
  readonly mutations: readonly Deno.KvMutation[];
  /** Called once the commit is decided: `ok` false means none of the mutations was applied. */
  settle(ok: boolean): void;
}

/** Something that rides along commits. */
export interface CommitRider {
  /** The mutations for the commit being built (at most `room`), or undefined for none. */
  ride(room: number): Ride | undefined;
  /** Called when the carrier has nothing more to commit: what is still pending needs another way. */
  idle?(): void;
}

/** A writer whose commits carry riders. */
export interface CommitCarrier {
  carry(rider: CommitRider): void;
  /** True while a commit is queued or in flight: the riders will be asked again before it is idle. */
  pending(): boolean;
}
