/**
 * `--adminUser` / `--adminPassword` with authorization on: makes sure the group holds that user,
 * its credentials and a role granting every verb on `/`, at links derived from the email (so
 * every host, and every restart, names the same documents). It writes through this host's own
 * port as the system user, so each write is routed to its owner and replicated; it waits for the
 * group like any request, retries every few seconds until done, and writes nothing that is
 * already there (the password is checked against the stored hash rather than rehashed).
 */

import type { Logger } from 'pino';
import { CREDENTIALS_LINK, ROLES_LINK, USERS_LINK, VERBS } from '../../lib/authz.js';
import type { JsonObject } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import { fnv64, hex64 } from '../../lib/hash.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import type { DocumentIndex } from '../../index/views.js';
import { verifyPassword } from './passwords.js';
import type { PeerClient } from '../net/peers.js';

export function adminLinks(email: string): { user: string; credentials: string; role: string } {
  const id = `admin-${hex64(fnv64(email))}`;
  return { user: `${USERS_LINK}/${id}`, credentials: `${CREDENTIALS_LINK}/${id}`, role: `${ROLES_LINK}/${id}` };
}

export interface AdminBootstrapDeps {
  email: string;
  password: string;
  index: DocumentIndex;
  peers: PeerClient;
  selfUri: () => string;
  logger: Logger;
  operationTimeoutMicros: number;
}

export class AdminBootstrap {
  private stopped = false;
  private timer: NodeJS.Timeout | undefined;
  /** Resolves once the admin user, credentials and role are in place. */
  readonly ready: Promise<void>;
  private resolveReady!: () => void;

  constructor(private readonly d: AdminBootstrapDeps) {
    this.ready = new Promise((r) => (this.resolveReady = r));
  }

  start(): void {
    void this.attempt();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
  }

  private async attempt(): Promise<void> {
    if (this.stopped) return;
    try {
      await this.ensure();
      this.d.logger.info({ user: this.d.email, link: adminLinks(this.d.email).user }, 'admin user ready');
      this.resolveReady();
    } catch (e) {
      if (this.stopped) return;
      this.d.logger.warn({ err: (e as Error).message }, 'admin user not in place yet; retrying');
      this.timer = setTimeout(() => void this.attempt(), limits.adminBootstrapRetryMs);
      this.timer.unref();
    }
  }

  private async ensure(): Promise<void> {
    const { email, password } = this.d;
    const links = adminLinks(email);
    const user = await this.call('GET', links.user);
    if (user.status !== 200 || (user.body as JsonObject).email !== email) {
      await this.write(user.status === 200 ? 'PUT' : 'POST', user.status === 200 ? links.user : USERS_LINK, {
        documentSelfLink: links.user,
        email,
      });
    }
    const local = this.d.index.latest(links.credentials) as JsonObject | undefined;
    if (!(local && local.documentUpdateAction !== 'DELETE' && (await verifyPassword(password, local.privateKeyHash)))) {
      const exists = (await this.call('GET', links.credentials)).status === 200;
      const body = { documentSelfLink: links.credentials, userEmail: email, userLink: links.user, privateKey: password };
      await this.write(exists ? 'PUT' : 'POST', exists ? links.credentials : CREDENTIALS_LINK, body);
    }
    const role = { userLinks: [links.user], pathPrefixes: ['/'], verbs: [...VERBS], policy: 'ALLOW' };
    const current = await this.call('GET', links.role);
    const same = current.status === 200 && JSON.stringify(pick(current.body as JsonObject, Object.keys(role))) === JSON.stringify(role);
    // Roles take POST on an existing link as a PUT (IDEMPOTENT_POST).
    if (!same) await this.write('POST', ROLES_LINK, { documentSelfLink: links.role, ...role });
  }

  private async write(method: string, path: string, body: JsonObject): Promise<void> {
    const r = await this.call(method, path, body, method === 'POST' ? { pragma: 'xn-force-index-update' } : {});
    // Another host of the group may have created it a moment before: the next attempt compares again.
    if (r.status === 409) throw new KryptonError('ALREADY_EXISTS', `${method} ${path}: 409, created meanwhile`);
    if (r.status !== 200)
      throw new KryptonError(
        'PEER_UNAVAILABLE',
        `${method} ${path}: ${r.status} ${(r.body as { message?: string } | undefined)?.message ?? ''}`,
      );
  }

  private call(
    method: string,
    path: string,
    body?: unknown,
    headers: Record<string, string> = {},
  ): Promise<{ status: number; body: unknown }> {
    return this.d.peers.json(this.d.selfUri() + path, {
      method,
      body,
      headers,
      timeoutMs: msFromMicros(this.d.operationTimeoutMicros),
    });
  }
}

function pick(o: JsonObject, keys: string[]): JsonObject {
  const out: JsonObject = {};
  for (const k of keys) out[k] = o[k];
  return out;
}
