/**
 * Health for load balancers and orchestrators: `/livez` (the process serves requests: 200 from
 * the moment the port is open, while the log is still being replayed too) and `/readyz` (200
 * only once the log is recovered, the host has joined the group it was told to join, and the
 * group is available, so owner-selected writes for its links run instead of parking; otherwise
 * 503 with the reasons). `GET /core/management/available` is Xenon's utility endpoint for the
 * same question: 200, or 503 with Xenon's error body. All three need no token, so a probe needs
 * no credentials; they reveal nothing but the reasons.
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { KryptonError } from '../../lib/errors.js';
import { toErrorResponse } from '../net/http-errors.js';
import type { Groups } from '../membership/group-set.js';
import type { Selectors } from '../membership/selectors.js';

export const LIVEZ_PATH = '/livez';
export const READYZ_PATH = '/readyz';
export const AVAILABLE_PATH = '/core/management/available';
const JSON_TYPE = 'application/json; charset=utf-8';

export interface Readiness {
  ready: boolean;
  /** Why the host is not ready; empty when it is. */
  reasons: string[];
}

/** What readiness is judged on once the host's parts exist. */
export interface ReadinessParts {
  groups: Groups;
  selectors: Selectors;
  /** Peers other than this host it was started with (--peerNodes). */
  peerCount: number;
}

/** The host's phases as readiness sees them: recovering the log, serving, stopping. */
export class Health {
  private parts: ReadinessParts | undefined;
  private stopping = false;

  /** The log is replayed and the parts are built: readiness now follows the group. */
  serving(parts: ReadinessParts): void {
    this.parts = parts;
  }

  stop(): void {
    this.stopping = true;
  }

  readiness(): Readiness {
    if (this.stopping) return { ready: false, reasons: ['the host is stopping'] };
    const p = this.parts;
    if (!p) return { ready: false, reasons: ['the log is being recovered (replayed into the index)'] };
    const reasons: string[] = [];
    const g = p.groups.default.group;
    const nodes = Object.values(g.nodes);
    if (p.peerCount > 0 && nodes.length < 2) reasons.push(`not joined: the group lists only this host (${p.peerCount} peers were given)`);
    if (!p.selectors.available) {
      const available = nodes.filter((n) => n.status === 'AVAILABLE').length;
      const quorum = g.nodes[g.documentOwner ?? '']?.membershipQuorum ?? 1;
      reasons.push(
        `the node group is not available: ${available} of ${nodes.length} members AVAILABLE, membership quorum ${quorum}; writes for this host's links would wait`,
      );
    }
    return { ready: reasons.length === 0, reasons };
  }

  /** Answers /livez, /readyz and /core/management/available; false for any other path. */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path !== LIVEZ_PATH && path !== READYZ_PATH && path !== AVAILABLE_PATH) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const { status, body } = toErrorResponse(new KryptonError('METHOD_NOT_ALLOWED', `Action not supported: ${req.method}`));
      return answer(req, res, status, body);
    }
    if (path === LIVEZ_PATH) return answer(req, res, 200, { status: 'ok' });
    const r = this.readiness();
    if (path === READYZ_PATH)
      return answer(req, res, r.ready ? 200 : 503, r.ready ? { status: 'ok' } : { status: 'unavailable', reasons: r.reasons });
    if (r.ready) return answer(req, res, 200, {});
    const { body } = toErrorResponse(new KryptonError('QUORUM_UNAVAILABLE', `host not available: ${r.reasons.join('; ')}`));
    return answer(req, res, 503, body);
  }
}

function answer(req: IncomingMessage, res: ServerResponse, status: number, body: unknown): true {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(text), 'cache-control': 'no-store' });
  res.end(req.method === 'HEAD' ? undefined : text);
  return true;
}
