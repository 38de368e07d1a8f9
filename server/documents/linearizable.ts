/**
 * An owner's part of a linearizable query (READ_AFTER_WRITE_CONSISTENCY with OWNER_SELECTION,
 * server/tasks/query-gather.ts): the documents this host owns that match, each as a GET routed to
 * it would answer it (lib/commit.ts: the state before a write still in flight, nothing for a link
 * in doubt) and only under the owner lease. It is computed in one synchronous step over the index,
 * the step being this part's linearization point. A link it cannot answer now (in doubt, not yet
 * synchronized since the view changed, or without a lease) is counted as unavailable rather than
 * left out, and its synchronization is started, so the asker tries again shortly instead of
 * answering a subset.
 */

import type { CommitTracker } from '../../lib/commit.js';
import type { Link, Micros } from '../../lib/ids.js';
import type { QueryPlan } from '../../lib/query/spec.js';
import type { ServiceRegistry } from '../../lib/service.js';
import { matchesLatest, type QueryHit } from '../../index/query.js';
import type { DocumentIndex } from '../../index/views.js';
import type { ClusterPorts } from './ports.js';

export interface OwnerPart {
  hits: QueryHit[];
  /** Owned links that may match and could not be answered now; a few of them, for the error. */
  unavailable: number;
  examples: Link[];
}

export interface OwnerPartDeps {
  index: DocumentIndex;
  commits: CommitTracker;
  cluster: ClusterPorts;
  registry: ServiceRegistry;
}

export function ownerPart(d: OwnerPartDeps, plan: QueryPlan, owned: (link: Link) => boolean, nowMicros: Micros): OwnerPart {
  const out: OwnerPart = { hits: [], unavailable: 0, examples: [] };
  const refuse = (link: Link) => {
    if (out.examples.length < 5) out.examples.push(link);
    out.unavailable++;
  };
  // Under synchronization, or without a lease, this host's copy is no answer (the read path's rules).
  const answerable = (link: Link): boolean => {
    const svc = d.registry.forChild(link);
    if (!svc?.has('REPLICATION')) return true;
    if (d.cluster.synch.ensure(svc, link) !== undefined || !d.cluster.lease.holds(svc, link)) {
      refuse(link);
      return false;
    }
    return true;
  };
  // A link still to synchronize, or in doubt after a failed write, may hold a state that matches
  // while this copy does not: nothing from this host until they are settled (started here).
  if (d.cluster.synch.unsynchronized()) out.unavailable++;
  const doubt = new Map(d.commits.inDoubt());
  for (const [link, v] of doubt) {
    if (v.kind !== 'unsettled' || !owned(link)) continue;
    const svc = d.registry.forChild(link);
    if (svc) {
      d.cluster.fencing.staleEpoch(link);
      void d.cluster.synch.ensure(svc, link)?.catch(() => undefined);
    }
    refuse(link);
  }
  if (out.unavailable > 0) return out;
  for (const h of d.index.query(plan, nowMicros)) {
    if (!owned(h.link)) continue;
    const v = doubt.get(h.link);
    // A version still in flight is not answered; the state before it is, below.
    if (v?.kind === 'committed' && (v.state === undefined || h.version > v.state.documentVersion)) continue;
    if (answerable(h.link)) out.hits.push(h);
  }
  if (!plan.includeAllVersions) {
    for (const [link, v] of doubt) {
      if (v.kind !== 'committed' || v.state === undefined || !owned(link)) continue;
      if (matchesLatest(plan, v.state, nowMicros) && answerable(link))
        out.hits.push({ link, version: v.state.documentVersion, doc: v.state });
    }
  }
  return out;
}
