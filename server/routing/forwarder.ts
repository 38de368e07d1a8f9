/**
 * Batched forwarding from an entry host to an owner. Every request for a document that enters a
 * host other than its owner goes to the owner; instead of one HTTP request each, the requests
 * bound for one owner are packed into one msgpack batch (`POST <selector>/forwarded`), up to
 * limits.forwardBatchesInFlightMax batches in flight per owner; requests arriving while those
 * are out wait and go together in the next batch. The owner answers each request of a batch as
 * soon as it is done, in a stream of frames, so one slow request does not hold up the others.
 * An answer carries the status and the JSON body the owner's own HTTP answer would have had;
 * the entry host relays it unchanged. A batch that fails at the network level (or answers
 * anything but 200) fails its unanswered requests with PEER_UNAVAILABLE (peerError), which the routing retries as
 * it retries a failed single forward. A request the owner holds open for long (a direct task)
 * travels in a batch of its own, outside the in-flight limit, so it never holds up others.
 *
 * The entry host has decoded and checked each request (http/document-requests.ts): a body is the
 * JSON text of the checked body, and a create's names the child link the entry host chose. The
 * owner runs it without checking it again; batches are for members only (peer-auth.ts).
 *
 * The codec of both directions lives here, with its validation: a malformed batch is a 400.
 */

import { Packr, Unpackr } from 'msgpackr';
import { KryptonError } from '../../lib/errors.js';
import { limits } from '../../lib/limits.js';
import { peerError, type PeerClient, type PeerReply } from '../net/peers.js';

export const FORWARDED_SUFFIX = '/forwarded';
const CONTENT_TYPE = 'application/x-msgpack';
const JSON_TYPE = 'application/json; charset=utf-8';
const METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE'];

const packr = new Packr({ useRecords: false });
const unpackr = new Unpackr({ useRecords: false });

/** One forwarded request: what the entry host would have sent as its own HTTP request. */
export interface ForwardItem {
  method: string;
  /** Path and query as the client sent them. */
  url: string;
  /** The pragma header, `xn-fwd` included. */
  pragma: string;
  /** `x-xenon-*` headers. */
  xenonHeaders: Record<string, string>;
  /** The JSON body text, as a forwarded HTTP request would carry it. */
  body: string | undefined;
  /**
   * A write's request id: made once by the entry host (or the client's Idempotency-Key) and sent
   * again with every retry, so the owner applies the write once (lib/dedup.ts).
   */
  requestId?: string;
  /** A write's: the version of the owner's membership entry the entry host chose it by (routing.ts). */
  ownerEntry?: number;
}

/** The request id and owner entry are last and optional: an item without them is the five fields alone. */
type WireItem =
  | [method: string, url: string, pragma: string, xenon: Record<string, string>, body: string | null]
  | [method: string, url: string, pragma: string, xenon: Record<string, string>, body: string | null, requestId: string]
  | [
      method: string,
      url: string,
      pragma: string,
      xenon: Record<string, string>,
      body: string | null,
      requestId: string,
      ownerEntry: number,
    ];

export function encodeForwardBatch(items: readonly ForwardItem[]): Buffer {
  return packr.pack(
    items.map((i): WireItem => {
      const w: WireItem = [i.method, i.url, i.pragma, i.xenonHeaders, i.body ?? null];
      if (i.requestId === undefined) return w;
      return i.ownerEntry === undefined ? [...w, i.requestId] : [...w, i.requestId, i.ownerEntry];
    }),
  );
}

/** Decodes and checks a batch from the network: anything malformed is a 400, never a crash. */
export function decodeForwardBatch(buf: Buffer): ForwardItem[] {
  let raw: unknown;
  try {
    raw = unpackr.unpack(buf);
  } catch (e) {
    throw new KryptonError('INVALID_BODY', `forwarded batch is not msgpack: ${(e as Error).message}`);
  }
  const bad = (why: string) => new KryptonError('INVALID_BODY', `invalid forwarded batch: ${why}`);
  if (!Array.isArray(raw)) throw bad('not an array');
  if (raw.length > limits.forwardBatchItemsMax) throw bad(`more than ${limits.forwardBatchItemsMax} requests`);
  return raw.map((w: unknown, i) => {
    if (!Array.isArray(w) || w.length < 5 || w.length > 7)
      throw bad(`request ${i} is not [method, url, pragma, headers, body, request id?, owner entry?]`);
    const [method, url, pragma, xenon, body, requestId, ownerEntry] = w as unknown[];
    if (typeof method !== 'string' || !METHODS.includes(method)) throw bad(`request ${i} has no known method`);
    if (typeof url !== 'string' || !url.startsWith('/')) throw bad(`request ${i} has no path`);
    if (typeof pragma !== 'string') throw bad(`request ${i} has no pragma`);
    if (!xenon || typeof xenon !== 'object' || Array.isArray(xenon)) throw bad(`request ${i} has no header map`);
    const xenonHeaders: Record<string, string> = {};
    for (const [k, v] of Object.entries(xenon)) {
      if (!k.startsWith('x-xenon-') || typeof v !== 'string') throw bad(`request ${i} has a header other than x-xenon-*`);
      xenonHeaders[k] = v;
    }
    if (body !== null && typeof body !== 'string') throw bad(`request ${i} has a body that is not text`);
    if (typeof body === 'string' && Buffer.byteLength(body) > limits.bodyBytesMax)
      throw bad(`request ${i} has a body over ${limits.bodyBytesMax} bytes`);
    if (w.length >= 6 && (typeof requestId !== 'string' || requestId.length === 0 || requestId.length > limits.requestIdCharsMax))
      throw bad(`request ${i} has a request id that is not 1 to ${limits.requestIdCharsMax} characters`);
    const item: ForwardItem = { method, url, pragma, xenonHeaders, body: body ?? undefined };
    if (w.length === 7 && !(typeof ownerEntry === 'number' && Number.isSafeInteger(ownerEntry) && ownerEntry >= 0))
      throw bad(`request ${i} has an owner entry version that is not a non-negative integer`);
    if (typeof requestId === 'string') item.requestId = requestId;
    if (typeof ownerEntry === 'number') item.ownerEntry = ownerEntry;
    return item;
  });
}

/** One answer frame: [u32 LE length][msgpack [index, status, JSON body text]]. */
export function encodeAnswer(index: number, status: number, bodyText: string): Buffer {
  const payload = packr.pack([index, status, bodyText]);
  const frame = Buffer.allocUnsafe(4 + payload.length);
  frame.writeUInt32LE(payload.length, 0);
  payload.copy(frame, 4);
  return frame;
}

/** Reads answer frames from a stream of chunks, however the chunks cut them. */
export class AnswerReader {
  private pending: Buffer = Buffer.alloc(0);

  constructor(private readonly onAnswer: (index: number, status: number, bodyText: string) => void) {}

  push(chunk: Buffer): void {
    let buf = this.pending.length ? Buffer.concat([this.pending, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 4) {
      const len = buf.readUInt32LE(at);
      if (buf.length - at - 4 < len) break;
      const v = unpackr.unpack(buf.subarray(at + 4, at + 4 + len)) as unknown;
      if (!Array.isArray(v) || typeof v[0] !== 'number' || typeof v[1] !== 'number' || typeof v[2] !== 'string') {
        // The peer client turns this into the whole batch's PEER_UNAVAILABLE, naming the owner.
        throw new KryptonError('PEER_UNAVAILABLE', 'malformed answer frame');
      }
      this.onAnswer(v[0], v[1], v[2]);
      at += 4 + len;
    }
    buf = buf.subarray(at);
    // Keep a copy of a partial frame only: the chunk's memory belongs to the stream.
    this.pending = buf.length ? Buffer.from(buf) : Buffer.alloc(0);
  }
}

interface Pending {
  item: ForwardItem;
  bytes: number;
  timeoutMs: number;
  resolve(r: PeerReply): void;
  reject(e: unknown): void;
}

export interface ForwardStats {
  /** Batches sent and the requests they carried: requests / batches is the batching achieved. */
  batches: number;
  requests: number;
}

/** The requests bound for one owner under one selector. */
class ForwardChannel {
  private queue: Pending[] = [];
  private inFlight = 0;
  private scheduled = false;

  constructor(
    private readonly url: string,
    private readonly peers: PeerClient,
    private readonly stats: ForwardStats,
  ) {}

  send(item: ForwardItem, timeoutMs: number): Promise<PeerReply> {
    if (this.queue.length >= limits.forwardQueueMax) {
      return Promise.reject(
        new KryptonError('LIMIT_EXCEEDED', `forwarding queue to ${this.url} is full: ${limits.forwardQueueMax} requests wait`),
      );
    }
    return new Promise((resolve, reject) => {
      const bytes =
        item.url.length +
        (item.body === undefined ? 0 : Buffer.byteLength(item.body)) +
        item.pragma.length +
        (item.requestId?.length ?? 0) +
        limits.forwardItemOverheadBytes;
      this.queue.push({ item, bytes, timeoutMs, resolve, reject });
      this.schedule();
    });
  }

  private schedule(): void {
    if (this.scheduled || this.inFlight >= limits.forwardBatchesInFlightMax || this.queue.length === 0) return;
    this.scheduled = true;
    // After this turn's I/O callbacks: every request that arrived in the same turn joins the batch.
    setImmediate(() => {
      this.scheduled = false;
      while (this.queue.length && this.inFlight < limits.forwardBatchesInFlightMax) this.sendBatch(this.takeBatch());
    });
  }

  private takeBatch(): Pending[] {
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length && count < limits.forwardBatchItemsMax) {
      const size = this.queue[count]!.bytes;
      if (count > 0 && bytes + size > limits.forwardBatchBytesMax) break;
      bytes += size;
      count++;
    }
    return this.queue.splice(0, count);
  }

  /**
   * Fails every request still queued here (the owner was just written off): sent now, on fresh
   * connections to a host that does not answer, they would wait out their whole hop deadline
   * before routing could try the next owner.
   */
  failQueued(e: unknown): void {
    for (const p of this.queue.splice(0)) p.reject(e);
  }

  /** A request the owner holds open for long (a direct task): a batch of its own, outside the channel's limit. */
  sendAlone(item: ForwardItem, timeoutMs: number): Promise<PeerReply> {
    return new Promise((resolve, reject) => this.sendBatch([{ item, bytes: 0, timeoutMs, resolve, reject }], false));
  }

  private sendBatch(batch: Pending[], counted = true): void {
    if (counted) this.inFlight++;
    this.stats.batches++;
    this.stats.requests += batch.length;
    let answered = 0;
    const done = new Array<boolean>(batch.length).fill(false);
    const reader = new AnswerReader((i, status, text) => {
      const p = batch[i];
      if (!p || done[i]) throw new KryptonError('PEER_UNAVAILABLE', `answer for request ${i} is unexpected`);
      done[i] = true;
      answered++;
      p.resolve({ status, headers: { 'content-type': JSON_TYPE }, body: Buffer.from(text) });
    });
    const failRest = (e: unknown) => {
      batch.forEach((p, i) => {
        if (!done[i]) p.reject(e);
      });
    };
    // One deadline for the batch: the longest any of its requests may take on this hop.
    const timeoutMs = Math.max(...batch.map((p) => p.timeoutMs));
    this.peers
      .streamed(
        this.url,
        {
          method: 'POST',
          body: encodeForwardBatch(batch.map((p) => p.item)),
          headers: { 'content-type': CONTENT_TYPE, pragma: 'xn-fwd' },
          timeoutMs,
        },
        (chunk) => reader.push(chunk),
      )
      .then((r) => {
        if (r.status !== 200) {
          failRest(peerError(this.url, `status ${r.status}: ${r.body?.toString('utf8').slice(0, limits.peerReplyQuotedCharsMax) ?? ''}`));
        } else if (answered < batch.length) {
          failRest(peerError(this.url, `the owner answered ${answered} of ${batch.length} requests`));
        }
      }, failRest)
      .finally(() => {
        if (!counted) return;
        this.inFlight--;
        this.schedule();
      });
  }
}

export class Forwarder {
  private readonly channels = new Map<string, ForwardChannel>();
  readonly stats: ForwardStats = { batches: 0, requests: 0 };

  constructor(private readonly peers: PeerClient) {
    peers.onAbandon((origin) => {
      for (const [url, c] of this.channels) if (url.startsWith(`${origin}/`)) c.failQueued(peerError(url, 'peer marked UNAVAILABLE'));
    });
  }

  /**
   * Forwards `item` to the host at `origin`; its reply, or PEER_UNAVAILABLE when the hop failed.
   * `alone`: the owner may hold it for long (a direct task), so it goes in a batch of its own
   * and holds up no other request.
   */
  send(origin: string, selectorLink: string, item: ForwardItem, timeoutMs: number, alone = false): Promise<PeerReply> {
    const url = `${origin}${selectorLink}${FORWARDED_SUFFIX}`;
    let c = this.channels.get(url);
    if (!c) {
      c = new ForwardChannel(url, this.peers, this.stats);
      this.channels.set(url, c);
    }
    return alone ? c.sendAlone(item, timeoutMs) : c.send(item, timeoutMs);
  }
}
