/**
 * Query tasks (`/core/query-tasks`, `/core/local-query-tasks`, docs/xenon-compatibility.md, Queries): validates a task
 * body, runs its plan against the local index or, when it must gather (query-gather.ts), across
 * the group, shapes Xenon's QueryTask and results, keeps non-direct tasks for polling (bounded,
 * limits.queryTasksMax, expiring with the task, 600 s by default), and answers query pages.
 * A page link carries its query, the time its first run saw and its offset (lib/query/pages.ts,
 * compressed): any host answers it by running the query as of that time, so every page of a
 * query sees the same state of the index while writes go on, and a page outlives the host that
 * made it. With authorization on, a query only sees documents its caller may read (filtered
 * before counting and paging), and a task or page is visible only to the caller that created it.
 */

import { KINDS, type JsonObject, type ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import { generateDocumentId } from '../../lib/hash.js';
import type { Micros, NodeId } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import { parseQuerySpec, querySpecToJson, RESULT_LIMIT_NONE, type QueryPlan } from '../../lib/query/spec.js';
import { groupName, groupPageSpec, orderGroups } from '../../lib/query/select.js';
import { toErrorResponse } from '../net/http-errors.js';
import { groupValuesOf, selectLinks, shownDocument, type QueryResults, type QueryTaskState } from './query-shape.js';
import { orderHits, pageWindow, type GatheredHit } from '../../lib/query/merge.js';
import type { PageToken } from '../../lib/query/pages.js';
import { decodePageId, encodePageId } from './page-links.js';
import type { ReadScope } from '../../lib/authz.js';
import type { DocumentIndex } from '../../index/views.js';
import type { Clock } from '../base/clock.js';
import type { ContinuousQueries } from './continuous.js';
import type { QueryGather, QueryScope } from './query-gather.js';

export type { QueryResults, QueryTaskState } from './query-shape.js';

export const PAGE_FORWARDING_PATH = '/core/query-page-forwarding';
export const PAGE_PATH = '/core/query-page';

/** A hit as results are shaped from it: a link, its version, and its state when it was asked for. */
type ShownHit = Pick<GatheredHit, 'link' | 'version' | 'doc'>;

export class QueryTasks {
  private readonly tasks = new Map<string, QueryTaskState>();
  /** Who created each polled task, when a caller was named; others get 404. */
  private readonly owners = new WeakMap<QueryTaskState, string>();

  constructor(
    private readonly d: { index: DocumentIndex; clock: Clock; hostId: NodeId; gather: QueryGather; continuous: ContinuousQueries },
  ) {}

  /**
   * Handles a task POST to `factoryLink`. Direct tasks come back finished (200); others come back
   * CREATED (202) and finish on the next turn of the event loop, to be polled.
   */
  async create(factoryLink: string, raw: unknown, scope: ReadScope = {}): Promise<{ status: number; task: QueryTaskState }> {
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
    if (plan.continuous && isDirect) throw new KryptonError('INVALID_QUERY', 'CONTINUOUS is not allowed on a direct task');
    if (plan.continuous && this.d.gather.scope(plan).gather) {
      throw new KryptonError(
        'INVALID_QUERY',
        'CONTINUOUS is not supported on a query across hosts (BROADCAST, or documents of a factory not held by every host)',
      );
    }
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
      await this.run(task, plan, scope);
      return { status: 200, task };
    }
    this.evictIfFull(this.tasks, limits.queryTasksMax);
    this.tasks.set(task.documentSelfLink, task);
    if (scope.owner !== undefined) this.owners.set(task, scope.owner);
    const created = structuredClone(task);
    setImmediate(() => {
      task.taskInfo.stage = 'STARTED';
      this.run(task, plan, scope).catch((e: unknown) => {
        task.taskInfo.stage = 'FAILED';
        task.failureMessage = e instanceof Error ? e.message : String(e);
      });
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
    if (t && this.visible(this.owners.get(t), caller)) {
      this.tasks.delete(link);
      this.d.continuous.stop(link);
    }
  }

  /** The continuous-query side of a task its caller may see (subscriptions, streams). */
  live(link: string, caller?: string): ContinuousQueries {
    this.get(link, caller);
    return this.d.continuous;
  }

  /** The host stops: continuous tasks end their streams. */
  stop(): void {
    this.d.continuous.stopAll();
  }

  taskLinks(factoryLink: string, caller?: string): string[] {
    return [...this.tasks].filter(([l, t]) => l.startsWith(factoryLink + '/') && this.visible(this.owners.get(t), caller)).map(([l]) => l);
  }

  /**
   * A page of a paged query, on whichever host is asked: the query run again as of the time its
   * first run saw, in the host-independent order, sliced at the token's offset.
   */
  async page(pageId: string, caller: string | undefined, scope: ReadScope = {}): Promise<QueryTaskState> {
    const token = decodePageId(pageId);
    const notFound = () => new KryptonError('NOT_FOUND', `Service not found: ${PAGE_PATH}/${pageId}`);
    if (token === undefined || token.expires <= this.d.clock.nowMicros() || !this.visible(token.owner, caller)) throw notFound();
    let plan: QueryPlan;
    try {
      plan = parseQuerySpec(token.spec);
    } catch {
      throw notFound();
    }
    const size = token.groups ? plan.groupBy?.limit : plan.resultLimit;
    if (size === undefined) throw notFound();
    const started = performance.now();
    const where = { ...this.d.gather.scope(plan), gather: token.gather };
    const withDocs = token.groups === true || needsDocs(plan);
    let { hits } = await this.collect(plan, where, token.asOf, withDocs, scope);
    let results: QueryResults;
    if (token.groups) {
      results = this.groupResults(plan, hits, token, token.offset, started);
    } else {
      if (plan.offset > 0) hits = hits.slice(plan.offset);
      const w = pageWindow(hits.length, token.offset, size, plan.forwardOnly);
      const shown = hits.slice(w.start, w.end);
      results = this.shape(shown, plan, shown.length, started);
      if (w.next !== undefined) results.nextPageLink = this.pageLink({ ...token, offset: w.next });
      if (w.prev !== undefined) results.prevPageLink = this.pageLink({ ...token, offset: w.prev });
      await this.expandLinks(results, plan, scope);
    }
    return {
      taskInfo: { stage: 'FINISHED', isDirect: true },
      querySpec: token.spec as unknown as JsonObject,
      results,
      indexLink: '/core/document-index',
      nodeSelectorLink: '/core/node-selectors/default',
      documentSelfLink: `${PAGE_PATH}/${pageId}`,
      documentKind: KINDS.queryTask,
      documentVersion: 0,
      documentUpdateTimeMicros: this.d.clock.nowMicros(),
      documentExpirationTimeMicros: token.expires,
      documentOwner: this.d.hostId,
    };
  }

  /** Another host's request for this host's part of a query across hosts, answered as JSON text. */
  servePart(raw: unknown): string {
    return this.d.gather.serve(raw);
  }

  /** Drops expired tasks; called from the host's maintenance timer. */
  expire(nowMicros: Micros): void {
    for (const [k, t] of this.tasks) {
      if (t.documentExpirationTimeMicros > nowMicros) continue;
      this.tasks.delete(k);
      this.d.continuous.stop(k);
    }
  }

  private pageLink(token: PageToken): string {
    return `${PAGE_FORWARDING_PATH}?peer=${encodeURIComponent(token.host)}&path=${encodePageId(token)}`;
  }

  /**
   * The hits a query sees, readable by the caller: this host's in its local order, or every
   * host's merged; `asOf` (a page's time) makes the local order host-independent too.
   */
  private async collect(
    plan: QueryPlan,
    where: QueryScope,
    asOf: Micros | undefined,
    withDocs: boolean,
    scope: ReadScope,
  ): Promise<{ hits: ShownHit[]; horizon: Micros }> {
    let hits: ShownHit[];
    let horizon: Micros;
    if (plan.linearizable) {
      ({ hits, horizon } = await this.d.gather.linearizable(plan, withDocs));
    } else if (where.gather) {
      ({ hits, horizon } = await this.d.gather.gather(plan, where, asOf, withDocs));
    } else if (asOf !== undefined) {
      ({ hits, horizon } = this.d.gather.local(plan, asOf, withDocs));
      orderHits(hits, plan.sort, 'version');
    } else {
      const now = this.d.clock.nowMicros();
      horizon = Math.max(now, this.d.index.newestTimeMicros());
      hits = plan.ownerSelection ? this.d.gather.local(plan, undefined, true).hits : this.d.index.query(plan, now);
    }
    const { mayRead } = scope;
    return { hits: mayRead ? hits.filter((h) => mayRead(h.link)) : hits, horizon };
  }

  private async run(task: QueryTaskState, plan: QueryPlan, scope: ReadScope): Promise<void> {
    const started = performance.now();
    const paged = plan.resultLimit !== undefined && !plan.topResults && !plan.count && plan.groupBy === undefined;
    const where = this.d.gather.scope(plan);
    // A paged query shows no documents in its first answer, so it does not fetch them.
    const withDocs = plan.groupBy !== undefined || (!paged && needsDocs(plan));
    let got = await this.collect(plan, where, undefined, withDocs, scope);
    const expected = plan.expectedResultCount;
    if (expected !== undefined) {
      const deadline = Math.min(task.documentExpirationTimeMicros, this.d.clock.nowMicros() + limits.queryExpectedResultWaitMaxMicros);
      while (got.hits.length < expected) {
        if (this.d.clock.nowMicros() + limits.queryExpectedResultPollMicros >= deadline) {
          throw new KryptonError(
            'TIMEOUT',
            `expectedResultCount ${expected} not reached: ${got.hits.length} documents matched before the task expired`,
          );
        }
        await sleepMicros(limits.queryExpectedResultPollMicros);
        got = await this.collect(plan, where, undefined, withDocs, scope);
      }
    }
    const readable = got.hits;
    const hits = plan.offset > 0 ? readable.slice(plan.offset) : readable;
    const token: PageToken = {
      spec: querySpecToJson(plan),
      asOf: plan.timeSnapshotMicros ?? got.horizon,
      offset: 0,
      gather: where.gather,
      expires: task.documentExpirationTimeMicros,
      host: this.d.hostId,
    };
    if (scope.owner !== undefined) token.owner = scope.owner;
    let results: QueryResults;
    if (plan.count) {
      results = this.shape([], plan, readable.length, started);
    } else if (plan.groupBy !== undefined) {
      results = this.groupResults(plan, hits, token, 0, started);
    } else if (paged) {
      results = this.shape([], plan, 0, started);
      if (hits.length > 0) results.nextPageLink = this.pageLink(token);
    } else {
      const top = plan.resultLimit !== undefined ? hits.slice(0, plan.resultLimit) : hits;
      results = this.shape(top, plan, top.length, started);
      await this.expandLinks(results, plan, scope);
    }
    task.results = results;
    if (plan.continuous) {
      // A continuous task stays STARTED while it delivers later matches, as Xenon's does.
      results.continuousResults = this.d.continuous.start(task, plan, readable, scope.mayRead);
      task.taskInfo.durationMicros = Math.max(1, Math.round((performance.now() - started) * 1000));
      task.documentVersion = 1;
      task.documentUpdateTimeMicros = this.d.clock.nowMicros();
      return;
    }
    task.taskInfo.stage = 'FINISHED';
    task.taskInfo.durationMicros = Math.max(1, Math.round((performance.now() - started) * 1000));
    task.documentVersion = task.taskInfo.isDirect ? 0 : 2;
    task.documentUpdateTimeMicros = this.d.clock.nowMicros();
  }

  /**
   * A GROUP_BY answer: no documents of its own, a page link per group (that group's first page,
   * `resultLimit` documents a page), at most `groupResultLimit` groups from `offset` on, and a
   * nextPageLink (prevPageLink) to the groups after (before) them.
   */
  private groupResults(plan: QueryPlan, hits: readonly ShownHit[], token: PageToken, offset: number, started: number): QueryResults {
    const g = plan.groupBy!;
    const groups = orderGroups(
      hits.flatMap((h) => (h.doc === undefined ? [] : groupValuesOf(h.doc, g))),
      g,
    );
    const w = pageWindow(groups.length, offset, g.limit ?? groups.length, plan.forwardOnly);
    const results = this.shape([], plan, 0, started);
    const perGroup: Record<string, string> = {};
    for (const v of groups.slice(w.start, w.end)) {
      const spec = groupPageSpec(token.spec, g, v, plan.resultLimit ?? GROUP_PAGE_ALL);
      perGroup[groupName(v)] = this.pageLink({ ...token, spec, offset: 0, groups: undefined });
    }
    results.nextPageLinksPerGroup = perGroup;
    const listing = { ...token, groups: true };
    if (w.next !== undefined) results.nextPageLink = this.pageLink({ ...listing, offset: w.next });
    if (w.prev !== undefined) results.prevPageLink = this.pageLink({ ...listing, offset: w.prev });
    return results;
  }

  private shape(hits: readonly ShownHit[], plan: QueryPlan, count: number, started: number): QueryResults {
    const allVersions = plan.includeAllVersions;
    const links = hits.map((h) => (allVersions ? `${h.link}?documentVersion=${h.version}` : h.link));
    const results: QueryResults = { documentLinks: links, documentCount: count, queryTimeMicros: 0, documentOwner: this.d.hostId };
    if (plan.expandContent || plan.selectFields !== undefined || plan.builtinOnly) {
      const docs: Record<string, ServiceDocument> = {};
      for (const [i, h] of hits.entries()) docs[links[i]!] = shownDocument(h.doc as ServiceDocument, plan);
      results.documents = docs;
    }
    if (plan.selectLinks !== undefined) Object.assign(results, selectLinks(hits, links, plan.selectLinks));
    results.queryTimeMicros = Math.max(1, Math.round((performance.now() - started) * 1000));
    return results;
  }

  /**
   * EXPAND_LINKS: the latest state of every selected link, found by a query of its own (so a link
   * to a document held elsewhere is gathered like any match); a link nobody holds, or the caller
   * may not read, gets Xenon's 404 error body in its place.
   */
  private async expandLinks(results: QueryResults, plan: QueryPlan, scope: ReadScope): Promise<void> {
    if (!plan.expandLinks || results.selectedLinks === undefined) return;
    const found = new Map<string, ServiceDocument>();
    const wanted = results.selectedLinks;
    for (let i = 0; i < wanted.length; i += limits.queryClausesMax - 1) {
      const chunk = wanted.slice(i, i + limits.queryClausesMax - 1);
      const lookup = parseQuerySpec({
        query: {
          booleanClauses: chunk.map((l) => ({ occurance: 'SHOULD_OCCUR', term: { propertyName: 'documentSelfLink', matchValue: l } })),
        },
        options: ['EXPAND_CONTENT'],
      });
      const { hits } = await this.collect(lookup, this.d.gather.scope(lookup), undefined, true, scope);
      for (const h of hits) found.set(h.link, h.doc as ServiceDocument);
    }
    const selected: Record<string, JsonObject> = {};
    for (const l of wanted)
      selected[l] =
        found.get(l) ?? (toErrorResponse(new KryptonError('NOT_FOUND', `Service not found: ${l}`)).body as unknown as JsonObject);
    results.selectedDocuments = selected;
  }

  private evictIfFull<V>(m: Map<string, V>, max: number): void {
    // Maps iterate in insertion order, so the first key is the oldest.
    while (m.size >= max) m.delete(m.keys().next().value!);
  }
}

/** A group page without resultLimit shows the whole group (the largest page size below "none"). */
const GROUP_PAGE_ALL = RESULT_LIMIT_NONE - 1;

/** The documents a query's results show need the states, not only the links. */
function needsDocs(plan: QueryPlan): boolean {
  return plan.expandContent || plan.builtinOnly || plan.selectFields !== undefined || plan.selectLinks !== undefined;
}

function sleepMicros(micros: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, Math.ceil(micros / 1000)).unref());
}
