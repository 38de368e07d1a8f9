/**
 * Answers an owner gives from its own copy without logging anything: a precondition that failed
 * (a stale documentVersion, a create over a live link, a handler that refused the state it saw) or
 * an update with nothing to do. A write that is logged needs no lease, since its quorum and the
 * replicas' promises decide it; these answers have no quorum behind them, so they are given only
 * while the owner holds its lease (OwnerLeasePort), or the write waits for it and is planned again.
 */

/** The lease check for one link (OwnerLeasePort.check, bound): undefined when the owner holds it now. */
export type LeaseCheck = () => Promise<void> | undefined;

/** Thrown out of a write's turn in the link queue: wait on `until`, then plan the write again. */
export class LeaseWait {
  constructor(readonly until: Promise<void>) {}
}

/**
 * Runs `plan` (pure, synchronous). A throw, or an undefined result (nothing to do), is answered only
 * when `lease` says the owner may answer from its copy now; otherwise a LeaseWait is thrown instead.
 */
export function underLease<T>(plan: () => T, lease: LeaseCheck): T {
  let out: T;
  try {
    out = plan();
  } catch (e) {
    const until = lease();
    throw until ? new LeaseWait(until) : e;
  }
  if (out === undefined) {
    const until = lease();
    if (until) throw new LeaseWait(until);
  }
  return out;
}

/** Runs a write's turn in its link's queue; a LeaseWait out of it is a wait before planning it again. */
export async function leasedTurn<T>(
  fn: (lease: LeaseCheck) => Promise<T>,
  lease: LeaseCheck,
): Promise<{ done: T } | { wait: Promise<void>; synch: false }> {
  try {
    return { done: await fn(lease) };
  } catch (e) {
    if (e instanceof LeaseWait) return { wait: e.until, synch: false };
    throw e;
  }
}
