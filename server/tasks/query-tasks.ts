/**
 * Query tasks (`/core/query-tasks`, `/core/local-query-tasks`, docs/xenon-compatibility.md, Queries): validates a task
 * body, runs its plan against the local index, shapes Xenon's QueryTask and results, and keeps
 * what outlives one request: non-direct tasks for polling and result snapshots for paging. A
 * snapshot holds the ordered hits of one run, so every page of a query sees the same answer even
 * while writes go on. Both stores are bounded (limits.queryTasksMax, limits.queryPagesMax) and
 * expire with the task (600 s by default). With authorization on, a query only sees documents
 * its caller may read (filtered before counting and paging), and a task or page is visible only
 * to the caller that created it.
 */

import { KINDS, type JsonObject, type ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import { generateDocumentId } from '../../lib/hash.js';
import type { Micros, NodeId } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import { parseQuerySpec, querySpecToJson, type QueryPlan } from '../../lib/query/spec.js';
import type { DocumentIndex, QueryHit } from '../../index/views.js';
import type { ReadScope } from '../../lib/authz.js';
import type { Clock } from '../base/clock.js';

export interface QueryResults extends JsonObject {
  documentLinks: string[];
  documents?: Record<string, ServiceDocument>;
  documentCount: number;
  queryTimeMicros: number;
  nextPageLink?: string;
  prevPageLink?: string;
  documentOwner: string;
}

export interface QueryTaskState extends JsonObject {
  taskInfo: { stage: 'CREATED' | 'STARTED' | 'FINISHED' | 'FAILED'; isDirect: boolean; durationMicros?: number };
  querySpec: JsonObject;
  results?: QueryResults;
  indexLink: string;
  nodeSelectorLink: string;
  documentSelfLink: string;
  documentKind: string;
  documentVersion: number;
  documentUpdateTimeMicros: number;
  documentExpirationTimeMicros: number;
  documentOwner: string;
}

interface Snapshot {
  owner: string | undefined;
  hits: QueryHit[];
  pageSize: number;
  plan: QueryPlan;
  task: QueryTaskState;
  expiresMicros: Micros;
}

export const PAGE_FORWARDING_PATH = '/core/query-page-forwarding';
export const PAGE_PATH = '/core/query-page';

export class QueryTasks {
  private readonly tasks = new Map<string, QueryTaskState>();
  private readonly snapshots = new Map<string, Snapshot>();
  /** Who created each polled task, when a caller was named; others get 404. */
  private readonly owners = new WeakMap<QueryTaskState, string>();

  constructor(private readonly d: { index: DocumentIndex; clock: Clock; hostId: NodeId }) {}

  /**
   * Handles a task POST to `factoryLink`. Direct tasks come back finished (200); others come back
   * CREATED (202) and finish on the next turn of the event loop, to be polled.
   */
  create(factoryLink: string, raw: unknown, scope: ReadScope = {}): { status: number; task: QueryTaskState } {
    if (raw === undefined || raw === null || typeof raw !== 'object' || Array.isArray(raw)) {
      throw new KryptonError('INVALID_BODY', 'QueryTask body is required');
    }
    const body = raw as JsonObject;
    const info = body.taskInfo;
    if (info !== undefined && info !== null && (typeof info !== 'object' || Array.isArray(info))) {
      throw new KryptonError('INVALID_BODY', 'taskInfo must be an object');
    }
    const isDirectRaw = (info as JsonObject | undefined | null)?.isDirect;
    if (isDirectRaw !== undefined && isDirectRaw !== null && typeof isDirectRaw !== 'boolean') {
      throw new KryptonError('INVALID_BODY', 'taskInfo.isDirect must be a boolean');
    }
    const isDirect = isDirectRaw === true;
    if (body.querySpec === undefined || body.querySpec === null) throw new KryptonError('INVALID_QUERY', 'querySpec is required');
    const plan = parseQuerySpec(body.querySpec);
    const now = this.d.clock.nowMicros();
    const exp = body.documentExpirationTimeMicros;
    if (exp !== undefined && exp !== null && (typeof exp !== 'number' || !Number.isInteger(exp) || exp < 0)) {
      throw new KryptonError('INVALID_BODY', 'documentExpirationTimeMicros must be a non-negative integer');
    }
    const id =
      typeof body.documentSelfLink === 'string' && body.documentSelfLink
        ? body.documentSelfLink.replace(/^.*\//, '')
        : generateDocumentId(this.d.hostId, now);
    const task: QueryTaskState = {
      taskInfo: { stage: 'CREATED', isDirect },
      querySpec: querySpecToJson(plan) as unknown as JsonObject,
      indexLink: '/core/document-index',
      nodeSelectorLink: '/core/node-selectors/default',
      documentSelfLink: `${factoryLink}/${id}`,
      documentKind: KINDS.queryTask,
      documentVersion: 0,
      documentUpdateTimeMicros: now,
      documentExpirationTimeMicros: typeof exp === 'number' && exp > 0 ? exp : now + limits.queryTaskExpirationMicros,
      documentOwner: this.d.hostId,
    };
    if (isDirect) {
      this.run(task, plan, scope);
      return { status: 200, task };
    }
    this.evictIfFull(this.tasks, limits.queryTasksMax);
    this.tasks.set(task.documentSelfLink, task);
    if (scope.owner !== undefined) this.owners.set(task, scope.owner);
    const created = structuredClone(task);
    setImmediate(() => {
      task.taskInfo.stage = 'STARTED';
      try {
        this.run(task, plan, scope);
      } catch (e) {
        task.taskInfo.stage = 'FAILED';
        task.failureMessage = e instanceof Error ? e.message : String(e);
      }
    });
    return { status: 202, task: created };
  }

  /** Whether a caller (`undefined`: one who sees everything) may see what `owner` created. */
  private visible(owner: string | undefined, caller: string | undefined): boolean {
    return caller === undefined || owner === undefined || owner === caller;
  }

  get(link: string, caller?: string): QueryTaskState {
    const t = this.tasks.get(link);
    if (!t || t.documentExpirationTimeMicros <= this.d.clock.nowMicros() || !this.visible(this.owners.get(t), caller)) {
      throw new KryptonError('NOT_FOUND', `Service not found: ${link}`);
    }
    return t;
  }

  delete(link: string, caller?: string): void {
    const t = this.tasks.get(link);
    if (t && this.visible(this.owners.get(t), caller)) this.tasks.delete(link);
  }

  taskLinks(factoryLink: string, caller?: string): string[] {
    return [...this.tasks].filter(([l, t]) => l.startsWith(factoryLink + '/') && this.visible(this.owners.get(t), caller)).map(([l]) => l);
  }

  /** A page of a paged query: the task with `results` holding that page. */
  page(pageId: string, caller?: string): QueryTaskState {
    const m = /^(.+)-(\d+)$/.exec(pageId);
    const snap = m ? this.snapshots.get(m[1]!) : undefined;
    if (!m || !snap || snap.expiresMicros <= this.d.clock.nowMicros() || !this.visible(snap.owner, caller)) {
      throw new KryptonError('NOT_FOUND', `Service not found: ${PAGE_PATH}/${pageId}`);
    }
    const pageNo = Number(m[2]);
    const start = pageNo * snap.pageSize;
    const started = performance.now();
    const hits = snap.hits.slice(start, start + snap.pageSize);
    const results = this.shape(hits, snap.plan, hits.length, started);
    if (start + snap.pageSize < snap.hits.length) results.nextPageLink = this.pageLink(`${m[1]}-${pageNo + 1}`);
    if (pageNo > 0) results.prevPageLink = this.pageLink(`${m[1]}-${pageNo - 1}`);
    return { ...snap.task, documentSelfLink: `${PAGE_PATH}/${pageId}`, results };
  }

  /** Drops expired tasks and snapshots; called from the host's maintenance timer. */
  expire(nowMicros: Micros): void {
    for (const [k, t] of this.tasks) if (t.documentExpirationTimeMicros <= nowMicros) this.tasks.delete(k);
    for (const [k, s] of this.snapshots) if (s.expiresMicros <= nowMicros) this.snapshots.delete(k);
  }

  private pageLink(pageId: string): string {
    return `${PAGE_FORWARDING_PATH}?peer=${encodeURIComponent(this.d.hostId)}&path=${encodeURIComponent(pageId)}`;
  }

  private run(task: QueryTaskState, plan: QueryPlan, scope: ReadScope): void {
    const started = performance.now();
    const all = this.d.index.query(plan, this.d.clock.nowMicros());
    const { mayRead } = scope;
    const readable = mayRead ? all.filter((h) => mayRead(h.link)) : all;
    const hits = plan.offset > 0 ? readable.slice(plan.offset) : readable;
    let results: QueryResults;
    if (plan.count) {
      results = this.shape([], plan, readable.length, started);
    } else if (plan.resultLimit !== undefined && !plan.topResults) {
      results = this.shape([], plan, 0, started);
      if (hits.length > 0) {
        const snapId = String(this.d.clock.nowMicros());
        this.evictIfFull(this.snapshots, limits.queryPagesMax);
        this.snapshots.set(snapId, {
          owner: scope.owner,
          hits,
          pageSize: plan.resultLimit,
          plan,
          task,
          expiresMicros: task.documentExpirationTimeMicros,
        });
        results.nextPageLink = this.pageLink(`${snapId}-0`);
      }
    } else {
      const top = plan.resultLimit !== undefined ? hits.slice(0, plan.resultLimit) : hits;
      results = this.shape(top, plan, top.length, started);
    }
    task.results = results;
    task.taskInfo.stage = 'FINISHED';
    task.taskInfo.durationMicros = Math.max(1, Math.round((performance.now() - started) * 1000));
    task.documentVersion = task.taskInfo.isDirect ? 0 : 2;
    task.documentUpdateTimeMicros = this.d.clock.nowMicros();
  }

  private shape(hits: QueryHit[], plan: QueryPlan, count: number, started: number): QueryResults {
    const allVersions = plan.includeAllVersions;
    const links = hits.map((h) => (allVersions ? `${h.link}?documentVersion=${h.version}` : h.link));
    const results: QueryResults = { documentLinks: links, documentCount: count, queryTimeMicros: 0, documentOwner: this.d.hostId };
    if (plan.expandContent) {
      const docs: Record<string, ServiceDocument> = {};
      for (const [i, h] of hits.entries()) docs[links[i]!] = h.doc;
      results.documents = docs;
    }
    results.queryTimeMicros = Math.max(1, Math.round((performance.now() - started) * 1000));
    return results;
  }

  private evictIfFull<V>(m: Map<string, V>, max: number): void {
    // Maps iterate in insertion order, so the first key is the oldest.
    while (m.size >= max) m.delete(m.keys().next().value!);
  }
}
