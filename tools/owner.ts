/**
 * Who owns a link: asks a host's node selector (Xenon's SelectAndForwardRequest with `key`)
 * and returns its answer. Used by `krypton owner` and by the leader-election recipe, where the
 * owner of a well-known link is the leader.
 */

import { request } from 'undici';
import { KryptonError } from '../lib/errors.js';
import { limits } from '../lib/limits.js';

export interface OwnerAnswer {
  key: string;
  ownerNodeId: string;
  ownerNodeGroupReference: string;
  isLocalHostOwner: boolean;
  availableNodeCount: number;
  /** The selector's status on that host: a leader only counts while it is AVAILABLE. */
  status: string;
}

export async function whoOwns(
  hostUrl: string,
  link: string,
  selector = 'default',
  timeoutMs: number = limits.ownerLookupTimeoutMs,
): Promise<OwnerAnswer> {
  const base = hostUrl.replace(/\/$/, '');
  const sel = `${base}/core/node-selectors/${selector}`;
  const opts = { headersTimeout: timeoutMs, bodyTimeout: timeoutMs };
  const st = await request(sel, opts);
  const status = ((await st.body.json()) as { status?: string }).status ?? 'UNKNOWN';
  // A selector that is not AVAILABLE parks owner requests until it is; say so instead of waiting.
  if (status !== 'AVAILABLE')
    throw new KryptonError(
      'QUORUM_UNAVAILABLE',
      `the node selector on ${base} is ${status}: no owner can be chosen until the group has its quorum`,
    );
  const r = await request(sel, {
    ...opts,
    method: 'POST',
    body: JSON.stringify({ key: link }),
    headers: { 'content-type': 'application/json' },
  });
  const body = (await r.body.json()) as OwnerAnswer & { message?: string };
  if (r.statusCode !== 200)
    throw new KryptonError('PEER_UNAVAILABLE', `${sel} answered ${r.statusCode}: ${body.message ?? JSON.stringify(body)}`);
  return { ...body, status };
}
