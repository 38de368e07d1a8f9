/**
 * Restore into a running group (`krypton restore FILE --host URL`, tools/restore-group.ts): the
 * tool reads a backup and sends every member the same pages of log records; each member keeps the
 * records of the links it holds a copy of (its selector's replica set names it) and appends them
 * as a replica appends an owner's records (DocumentStore.applyReplicated: logged durably, indexed,
 * with their own versions, epochs and times). The group must not hold those links already: a page
 * is checked whole before anything of it is applied, and a version this host holds with other
 * marks, or a link it holds past the backup's latest version of it (the page names it, `tops`),
 * refuses the page (409) with the link named. A version it holds with the same marks is a retry
 * and is skipped, so the tool may send a page again after a failure. The restored states name their old owners, so the first write of each
 * link in the new group takes it over under a new epoch, as after any change of owner.
 */

import type { NewLogRecord } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Link } from '../../lib/ids.js';
import type { ServiceRegistry } from '../../lib/service.js';
import type { DocumentIndex } from '../../index/views.js';
import type { DocumentStore } from './documents.js';

export interface RestoreDeps {
  registry: ServiceRegistry;
  index: DocumentIndex;
  store: DocumentStore;
  hostId: string;
  /** Whether this host is in the replica set of `link` under `selectorLink` (every member, without a replication factor). */
  holdsCopy(selectorLink: string, link: Link): boolean;
}

export interface RestoreAnswer {
  /** Records appended here. */
  applied: number;
  /** Records this host held already, alike (a page sent again). */
  held: number;
  /** Records of links this host holds no copy of. */
  elsewhere: number;
}

/** Whether this host is in `link`'s replica set; the link must be a replicated service's. */
function replicaHere(d: RestoreDeps, link: Link): boolean {
  const svc = d.registry.forChild(link);
  if (!svc?.has('REPLICATION')) throw new KryptonError('INVALID_BODY', `${link} is not a document of a replicated service here`);
  return d.holdsCopy(svc.def.nodeSelector, link);
}

/** The records of the page this host must append, or the conflict that refuses the whole page. */
export function planRestore(
  d: RestoreDeps,
  records: readonly NewLogRecord[],
  tops: ReadonlyMap<Link, number>,
): { apply: NewLogRecord[]; held: number; elsewhere: number } {
  const apply: NewLogRecord[] = [];
  let held = 0;
  let elsewhere = 0;
  const here = new Map<Link, boolean>();
  const applying = new Set<Link>();
  for (const r of records) {
    const mine = here.get(r.link) ?? replicaHere(d, r.link);
    here.set(r.link, mine);
    if (!mine) {
      elsewhere++;
      continue;
    }
    const latest = d.index.latest(r.link);
    const top = tops.get(r.link) ?? r.version;
    if (latest && latest.documentVersion > top)
      throw conflict(d, r.link, `holds it at version ${latest.documentVersion}, past the backup's latest version ${top}`);
    const had = d.index.version(r.link, r.version);
    if (had) {
      if ((had.documentEpoch ?? 0) === r.epoch && had.documentUpdateTimeMicros === r.timeMicros) {
        held++;
        continue;
      }
      throw conflict(d, r.link, `holds version ${r.version} with other content`);
    }
    if (latest && latest.documentVersion >= r.version && !applying.has(r.link))
      throw conflict(d, r.link, `holds it at version ${latest.documentVersion}, past the backup's version ${r.version}`);
    apply.push(r);
    applying.add(r.link);
  }
  return { apply, held, elsewhere };
}

function conflict(d: RestoreDeps, link: Link, what: string): KryptonError {
  return new KryptonError('ALREADY_EXISTS', `restore needs a group without the backup's documents: ${d.hostId} ${what} (${link})`);
}

/**
 * Appends this host's share of one page of a backup, all of it or (a conflict, a failed append)
 * none of it counted as done; `dryRun` only checks it (the tool checks every page on every member
 * before it writes any).
 */
export async function restorePage(
  d: RestoreDeps,
  page: { records: readonly NewLogRecord[]; tops: ReadonlyMap<Link, number> },
  dryRun = false,
): Promise<RestoreAnswer> {
  const plan = planRestore(d, page.records, page.tops);
  if (dryRun) return { applied: 0, held: plan.held, elsewhere: plan.elsewhere };
  const results = await d.store.applyReplicated(plan.apply);
  const bad = results.findIndex((r) => !r.ok);
  if (bad >= 0) {
    const r = results[bad]!;
    throw new KryptonError(
      r.code ?? 'LOG_FAILED',
      `restore of ${plan.apply[bad]!.link} version ${plan.apply[bad]!.version}: ${r.message ?? 'refused'}`,
    );
  }
  return { applied: plan.apply.length, held: plan.held, elsewhere: plan.elsewhere };
}
