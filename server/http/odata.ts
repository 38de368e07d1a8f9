/**
 * OData requests (lib/query/odata.ts) served as Xenon serves them: a factory GET with OData
 * parameters answers an ODataFactoryQueryResult (the query's results plus `totalCount`, the
 * first page when `$limit` pages, page links rewritten as `<factory>?path=<page>&peer=<host>`),
 * and `GET /core/odata-queries` answers the direct QueryTask itself. Both run the translated
 * querySpec as a direct query task on this host (server/tasks/query-tasks.ts), so OData and
 * query tasks cannot disagree.
 */

import type Router from '@koa/router';
import type Koa from 'koa';
import type { ReadScope } from '../../lib/authz.js';
import { declaredType, textFieldNames } from '../../lib/describe.js';
import type { JsonObject } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import { parseOData, type ODataNavigation, type ODataQuery } from '../../lib/query/odata.js';
import type { RegisteredService } from '../../lib/service.js';
import { notAllowed } from '../net/http-errors.js';
import type { QueryResults, QueryTasks, QueryTaskState } from '../tasks/query-tasks.js';

export const ODATA_QUERIES_PATH = '/core/odata-queries';
const QUERY_TASKS = '/core/query-tasks';

export interface ODataDeps {
  queries: QueryTasks;
  hostId: string;
}

/** Query parameters in order, decoded, repeats kept (so a repeat can be refused). */
export function queryParams(querystring: string): [string, string][] {
  try {
    return [...new URLSearchParams(querystring)];
  } catch {
    throw new KryptonError('INVALID_ARGUMENT', 'the query string is malformed');
  }
}

async function runDirect(d: ODataDeps, querySpec: ODataQuery['querySpec'] | JsonObject, scope: ReadScope): Promise<QueryTaskState> {
  return (await d.queries.create(QUERY_TASKS, { taskInfo: { isDirect: true }, querySpec }, scope)).task;
}

/** The page a navigation names; any host answers any page (the page id carries what it needs). */
function navigate(d: ODataDeps, nav: ODataNavigation, scope: ReadScope): Promise<QueryTaskState> {
  return d.queries.page(nav.pageId, scope.owner, scope);
}

/** The page id and host of a query page link (`/core/query-page-forwarding?peer=H&path=P`). */
function pageOf(link: string): { pageId: string; peer: string } | undefined {
  const q = link.indexOf('?');
  if (q < 0) return undefined;
  const p = new URLSearchParams(link.slice(q + 1));
  const pageId = p.get('path');
  const peer = p.get('peer');
  return pageId && peer ? { pageId: pageId.replace(/^.*\//, ''), peer } : undefined;
}

function factoryPageLink(factoryLink: string, link: string | undefined): string | undefined {
  const page = link === undefined ? undefined : pageOf(link);
  return page && `${factoryLink}?path=${encodeURIComponent(page.pageId)}&peer=${encodeURIComponent(page.peer)}`;
}

/** Xenon's ODataFactoryQueryResult: a ServiceDocumentQueryResult and `totalCount`. */
function factoryResult(factoryLink: string, r: QueryResults, totalCount: number): JsonObject {
  const out: JsonObject = { documentLinks: r.documentLinks };
  if (r.documents !== undefined) out.documents = r.documents;
  out.documentCount = r.documentCount;
  out.queryTimeMicros = r.queryTimeMicros;
  const next = factoryPageLink(factoryLink, r.nextPageLink);
  const prev = factoryPageLink(factoryLink, r.prevPageLink);
  if (next !== undefined) out.nextPageLink = next;
  if (prev !== undefined) out.prevPageLink = prev;
  out.documentOwner = r.documentOwner;
  out.totalCount = totalCount;
  out.documentVersion = 0;
  out.documentUpdateTimeMicros = 0;
  out.documentExpirationTimeMicros = 0;
  return out;
}

/** A factory GET with OData parameters (lib/query/odata.ts isODataRequest said so). */
export async function factoryOData(
  d: ODataDeps,
  svc: RegisteredService,
  params: [string, string][],
  scope: ReadScope,
): Promise<JsonObject> {
  const factoryLink = svc.def.factoryLink;
  const req = parseOData(params, {
    target: { kind: 'factory', factoryLink, documentKind: svc.def.kind },
    propertyType: (name) => declaredType(svc.def, name),
    allFields: textFieldNames(svc.def),
  });
  if (req.kind === 'navigate') {
    const page = (await navigate(d, req, scope)).results!;
    return factoryResult(factoryLink, page, page.documentCount);
  }
  let results: QueryResults;
  let totalCount: number;
  if (req.limit !== undefined && req.count) {
    // Xenon runs the count beside the paged query: the pages carry documents, the count the total.
    const { resultLimit: _, ...countSpec } = req.querySpec;
    totalCount = (await runDirect(d, countSpec, scope)).results!.documentCount;
    const pagedSpec = { ...req.querySpec, options: req.querySpec.options.map((o) => (o === 'COUNT' ? 'EXPAND_CONTENT' : o)) };
    results = (await runDirect(d, pagedSpec, scope)).results!;
  } else {
    results = (await runDirect(d, req.querySpec, scope)).results!;
    totalCount = results.documentCount;
  }
  if (req.limit !== undefined && results.nextPageLink !== undefined) {
    // The query answers with a link to its first page; a factory answers that page itself, and
    // (as Xenon) without $count its totalCount is that page's count.
    const first = pageOf(results.nextPageLink);
    if (first !== undefined) {
      results = (await d.queries.page(first.pageId, scope.owner, scope)).results!;
      if (!req.count) totalCount = results.documentCount;
    }
  }
  return factoryResult(factoryLink, results, totalCount);
}

/** `GET /core/odata-queries`: the direct QueryTask, or the page `$skipto` names. */
export async function odataQueries(d: ODataDeps, params: [string, string][], scope: ReadScope): Promise<QueryTaskState> {
  const req = parseOData(params, { target: { kind: 'queries' } });
  if (req.kind === 'navigate') return navigate(d, req, scope);
  return runDirect(d, req.querySpec, scope);
}

/** `GET /core/odata-queries` on the koa router; other verbs are 405. */
export function odataRoutes(router: Router, d: ODataDeps, scopeOf: (ctx: Koa.Context) => ReadScope): void {
  router.get(ODATA_QUERIES_PATH, async (ctx) => {
    ctx.body = await odataQueries(d, queryParams(ctx.querystring), scopeOf(ctx));
  });
  router.all(ODATA_QUERIES_PATH, (ctx) => notAllowed(ctx.method));
}
