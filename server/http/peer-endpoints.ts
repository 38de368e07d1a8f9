/**
 * The endpoints hosts call on each other for every replicated write, served straight from
 * node's 'request' event rather than through koa (they are the busiest routes of a group, and
 * only peers call them):
 *  - `POST <selector>/replication`: a msgpack batch of log records from an owner (replicator.ts),
 *    appended here; answered with a msgpack list of one result per record.
 *  - `POST <selector>/forwarded`: a msgpack batch of requests other hosts forwarded to this owner
 *    (forwarder.ts). Each was decoded and checked by its entry host; it is run through
 *    handleForwarded, which trusts that check (only members get here once peer auth is on: the
 *    host's handler checks membership before this endpoint, and a non-member goes on to koa's
 *    403) and does not check the body against the service's schema again, only that it parses
 *    as a client's must. The answers stream back one frame each, as each request finishes, with
 *    the status and body the request's own HTTP answer would have had.
 *  - `POST /core/node-selectors/default/query`: another host's request for this host's part of a
 *    query across hosts (server/tasks/query-gather.ts), answered as JSON.
 *  - `POST /core/node-selectors/default/lease`: another host's owner lease renewal or release
 *    (server/synch/lease.ts), answered as JSON, several times a second per peer.
 * Anything else (another verb, an unknown selector) goes on to the koa app, which answers it as
 * before (405, 404). A bad batch gets a 4xx with Xenon's error body, never a half-applied write.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Logger } from 'pino';
import { KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';
import { parseJsonText, readRawBody } from '../net/body.js';
import { handleForwarded, type DocumentAnswer, type DocumentRequestDeps } from './document-requests.js';
import type { DocumentStore } from '../documents/documents.js';
import { FORWARDED_SUFFIX, decodeForwardBatch, encodeAnswer, type ForwardItem } from '../routing/forwarder.js';
import { toErrorResponse } from '../net/http-errors.js';
import { logFailure } from '../net/failures.js';
import { REPLICATION_CONTENT_TYPE, decodeBatch, encodeResults } from '../replication/replicator.js';
import type { Selectors } from '../membership/selectors.js';
import { LEASE_PATH, type OwnerLease } from '../synch/lease.js';
import { QUERY_PEER_PATH } from '../tasks/query-gather.js';
import type { QueryTasks } from '../tasks/query-tasks.js';

const REPLICATION_SUFFIX = '/replication';
const SELECTORS_PREFIX = '/core/node-selectors/';

export interface PeerEndpointDeps extends DocumentRequestDeps {
  store: DocumentStore;
  selectors: Selectors;
  logger: Logger;
  queries: QueryTasks;
  lease: Pick<OwnerLease, 'serve'>;
}

export class PeerEndpoints {
  constructor(private readonly d: PeerEndpointDeps) {}

  /** Takes the request when it is one of the two endpoints; false leaves it to the koa app. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '';
    if (req.method !== 'POST' || !url.startsWith(SELECTORS_PREFIX)) return false;
    let run: (() => Promise<void>) | undefined;
    if (url.endsWith(REPLICATION_SUFFIX) && this.d.selectors.spec(url.slice(0, -REPLICATION_SUFFIX.length)))
      run = () => this.replication(req, res);
    else if (url.endsWith(FORWARDED_SUFFIX) && this.d.selectors.spec(url.slice(0, -FORWARDED_SUFFIX.length)))
      run = () => this.forwarded(req, res);
    else if (url === QUERY_PEER_PATH) run = () => this.query(req, res);
    else if (url === LEASE_PATH) run = () => this.lease(req, res);
    if (!run) return false;
    run().catch((e: unknown) => this.fail(req, res, e));
    return true;
  }

  private fail(req: IncomingMessage, res: ServerResponse, e: unknown): void {
    const { status, body, internal } = toErrorResponse(e);
    logFailure(this.d.logger, e, { status, internal }, req);
    if (res.headersSent) {
      // The stream of answers had begun: cutting it makes the sender fail what is unanswered.
      res.destroy();
      return;
    }
    const text = JSON.stringify(body);
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async replication(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readRawBody(req, limits.replicationBatchBytesMax);
    if (!raw) throw new KryptonError('INVALID_BODY', 'replication batch is required');
    const batch = decodeBatch(raw);
    const out = encodeResults(await this.d.store.applyReplicated(batch.records, batch.bodies));
    res.writeHead(200, { 'content-type': REPLICATION_CONTENT_TYPE, 'content-length': out.length });
    res.end(out);
  }

  private async query(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readRawBody(req, limits.bodyBytesMax);
    const text = this.d.queries.servePart(raw ? parseJsonText(raw.toString('utf8')) : undefined);
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async lease(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readRawBody(req, limits.bodyBytesMax);
    const text = JSON.stringify(this.d.lease.serve(raw ? parseJsonText(raw.toString('utf8')) : undefined));
    res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(text) });
    res.end(text);
  }

  private async forwarded(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readRawBody(req, limits.forwardBatchBytesMax);
    if (!raw) throw new KryptonError('INVALID_BODY', 'forwarded batch is required');
    const items = decodeForwardBatch(raw);
    res.writeHead(200, { 'content-type': REPLICATION_CONTENT_TYPE });
    // Answers finished in the same turn go out in one write.
    let out: Buffer[] = [];
    let flushing = false;
    const flush = () => {
      flushing = false;
      if (out.length && !res.destroyed) res.write(out.length === 1 ? out[0] : Buffer.concat(out));
      out = [];
    };
    await Promise.all(
      items.map(async (item, i) => {
        const { status, text } = await this.answer(item);
        out.push(encodeAnswer(i, status, text));
        if (!flushing) {
          flushing = true;
          setImmediate(flush);
        }
      }),
    );
    flush();
    res.end();
  }

  /** One forwarded request, answered as its own HTTP request would have been. */
  private async answer(item: ForwardItem): Promise<{ status: number; text: string }> {
    let answer: DocumentAnswer;
    try {
      answer = await handleForwarded(this.d, item, parseBody(item.body));
    } catch (e) {
      const { status, body, internal } = toErrorResponse(e);
      logFailure(this.d.logger, e, { status, internal }, item, 'forwarded request');
      return { status, text: JSON.stringify(body) };
    }
    if ('relayed' in answer) return { status: answer.relayed.status, text: answer.relayed.body.toString('utf8') };
    return { status: answer.status, text: JSON.stringify(answer.body) };
  }
}

/**
 * A forwarded request's JSON body text, parsed: the last step of decoding the batch. Checked as
 * a client's body is: a member's body too deep for msgpack, or with half a surrogate pair, would
 * fail the write with a 500 or leave the owner and its replicas disagreeing.
 */
function parseBody(text: string | undefined): unknown {
  if (text === undefined || text.trim() === '') return undefined;
  return parseJsonText(text);
}
