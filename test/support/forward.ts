/**
 * Sends forwarded requests straight to a host's batch endpoint (`POST <selector>/forwarded`), as
 * an entry host's forwarder would, and reads back each request's status and JSON body: for tests
 * of what an owner does with a forward (a retry, a late delivery), without an entry host.
 */
import { request } from 'undici';
import * as assert from 'uvu/assert';
import { AnswerReader, encodeForwardBatch, type ForwardItem } from '../../server/routing/forwarder.js';
import type { TestHost } from './hosts.js';

/** The answer to the first (usually only) item of the batch `items`, sent to `h`. */
export async function forwardTo<T>(h: TestHost, items: ForwardItem[]): Promise<[number, T]> {
  const r = await request(`${h.host.uri}/core/node-selectors/default/forwarded`, {
    method: 'POST',
    body: encodeForwardBatch(items),
    headers: { 'content-type': 'application/x-msgpack' },
  });
  assert.is(r.statusCode, 200);
  let got: [number, T] | undefined;
  new AnswerReader((i, status, text) => {
    if (i === 0) got = [status, JSON.parse(text) as T];
  }).push(Buffer.from(await r.body.arrayBuffer()));
  return got!;
}
