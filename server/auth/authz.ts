/**
 * Access control for every request, as one koa middleware placed before the routes:
 *
 * 1. Peer endpoints (lib/peer-requests.ts) refuse non-members with 403 once membership can be
 *    proved (server/auth/peer-auth.ts); the forwarding helper is judged by the request it forwards.
 * 2. Credentials writes have their `privateKey` replaced by a scrypt hash before any route sees
 *    them, and no response carries a stored hash; queries may not name it.
 * 3. With authorization on (--isAuthorizationEnabled), the caller is resolved: a member's request
 *    without a user token runs as the system user (replication, synchronization, gossip, a
 *    host's calls to itself); a valid token (header or cookie) is its user; anything else is the
 *    guest user, as in Xenon. The system user may do anything; others need a role granting the
 *    verb on the path (lib/authz.ts), else 403 `forbidden`. Factory lists, query tasks and watches
 *    are open to all but only show what the caller may GET; a query task or page is visible only
 *    to its creator. Session documents are the system user's alone.
 *
 * Forwarded requests carry the caller's token (the routing copies `x-xenon-*` headers; a token
 * given as a cookie is copied into the header here), so the owner checks the same user again.
 */

import type Koa from 'koa';
import {
  allows,
  AUTH_COOKIE,
  AUTH_TOKEN_HEADER,
  AUTHN_BASIC_LINK,
  authzPath,
  cookieValue,
  CREDENTIALS_LINK,
  GUEST_USER_LINK,
  grantsFor,
  PASSWORD_HASH_FIELD,
  ROLES_LINK,
  ruleOf,
  SYSTEM_USER_LINK,
  TOKENS_LINK,
  verbOf,
  watchedLinkOf,
  type Grant,
  type ReadScope,
  type RoleRule,
} from '../../lib/authz.js';
import type { JsonObject } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import type { Link } from '../../lib/ids.js';
import { limits } from '../../lib/limits.js';
import { classifyGroupBody, classifyRequest, isForwardingPath, pragmasOf, type RequestClass } from '../../lib/peer-requests.js';
import type { ServiceRegistry } from '../../lib/service.js';
import { CREDENTIALS_KIND } from '../../lib/services/authz-credentials.js';
import { Authn, type AuthnDeps, type Session } from './authn.js';
import { readJsonBody, readRawBody, replaceBody } from '../net/body.js';
import type { ChangeFeed } from '../documents/changes.js';
import { hashPassword } from './passwords.js';
import type { PeerAuth } from './peer-auth.js';
import { PAGE_PATH } from '../tasks/query-tasks.js';

export type Principal =
  | { kind: 'system'; link: typeof SYSTEM_USER_LINK }
  | { kind: 'guest'; link: typeof GUEST_USER_LINK }
  | { kind: 'user'; link: string; session: Session };

const SYSTEM: Principal = { kind: 'system', link: SYSTEM_USER_LINK };
const GUEST: Principal = { kind: 'guest', link: GUEST_USER_LINK };
const QUERY_FACTORIES = ['/core/query-tasks', '/core/local-query-tasks'];

/** Everything sessions need (they are built from the same deps), plus what access checks need. */
export interface AccessControlDeps extends AuthnDeps {
  /** --isAuthorizationEnabled. */
  enabled: boolean;
  peerAuth: PeerAuth;
  registry: ServiceRegistry;
  changes: ChangeFeed;
}

function forbidden(why?: string): KryptonError {
  return new KryptonError('FORBIDDEN', why ? `forbidden: ${why}` : 'forbidden');
}

function isObject(v: unknown): v is JsonObject {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);
}

export class AccessControl {
  readonly authn: Authn;
  private rules: { list: RoleRule[]; nextExpiryMicros: number } | undefined;
  private readonly grants = new Map<string, Grant[]>();

  constructor(private readonly d: AccessControlDeps) {
    this.authn = new Authn(d);
    if (d.enabled) {
      const invalidate = () => {
        this.rules = undefined;
        this.grants.clear();
      };
      d.changes.onFactory(ROLES_LINK, invalidate);
    }
  }

  get enabled(): boolean {
    return this.d.enabled;
  }

  middleware(): Koa.Middleware {
    return async (ctx, next) => {
      const raw = ctx.path;
      const { enabled } = this.d;
      const enforced = this.d.peerAuth.enforced;
      if (raw === AUTHN_BASIC_LINK) return this.authn.handle(ctx, this.presentedToken(ctx));
      if (!enforced && !enabled) {
        // The default: anyone may call anything, as before; only passwords need care.
        await this.guardSecrets(ctx, raw);
        await next();
        this.redact(ctx, raw);
        return;
      }
      const path = authzPath(raw);
      const pragmas = pragmasOf(ctx.get('pragma') || undefined);
      let member: boolean | undefined;
      const isMember = () => (member ??= this.d.peerAuth.isMember(ctx.req));
      let cls: RequestClass | 'join' = classifyRequest(ctx.method, path, pragmas);
      let target: string | undefined;
      if (isForwardingPath(path) && typeof ctx.query.path === 'string' && ctx.query.path.startsWith('/')) {
        target = authzPath(ctx.query.path.split('?')[0]!);
        const forwarded = classifyRequest(ctx.method, target, pragmas);
        if (forwarded !== 'client') cls = forwarded;
      }
      if (cls === 'group-body') cls = classifyGroupBody(ctx.method, await readJsonBody(ctx.req));
      if (enforced && cls === 'peer' && !isMember())
        throw forbidden(`${ctx.method} ${target ?? path} accepts requests from members of the node group only`);
      // A join makes this host call the new peer with the secret: only those who hold it, or
      // (with authorization on) users granted POST on the group, may point it somewhere.
      if (cls === 'join' && this.d.peerAuth.source === 'configured' && !enabled && !isMember()) {
        throw forbidden(
          'a JoinPeerRequest needs the peer secret while authorization is off, since the host sends that secret to the new peer',
        );
      }
      await this.guardSecrets(ctx, raw);
      if (!enabled) {
        await next();
        this.redact(ctx, raw);
        return;
      }
      let principal = cls === 'peer' ? SYSTEM : this.principalOf(ctx, isMember);
      if (principal instanceof Promise) principal = await principal;
      ctx.state.principal = principal;
      this.authorize(principal, ctx.method, path, target);
      await next();
      this.redact(ctx, raw);
    };
  }

  /** What the caller of `ctx` may see of lists, queries and watches. */
  scope(ctx: Koa.Context): ReadScope {
    const p = ctx.state.principal as Principal | undefined;
    if (!this.d.enabled || p === undefined) return {};
    if (p.kind === 'system') return { owner: p.link };
    return { mayRead: (link) => this.mayRead(p, link), owner: p.link };
  }

  /**
   * Whose query tasks and pages the caller of `ctx` may see: undefined for all of them (the system
   * user, and callers whose roles grant GET on the path they asked for), else their own.
   */
  caller(ctx: Koa.Context): string | undefined {
    const p = ctx.state.principal as Principal | undefined;
    if (p === undefined || p.kind === 'system' || allows(this.grantsOf(p.link), 'GET', authzPath(ctx.path))) return undefined;
    return p.link;
  }

  /** For watches: like scope().mayRead, but ends the watch once the caller's session ends. */
  watchFilter(ctx: Koa.Context): ((link: Link) => boolean) | undefined {
    const p = ctx.state.principal as Principal | undefined;
    if (!this.d.enabled || p === undefined || p.kind === 'system') return undefined;
    return (link) => {
      if (p.kind === 'user' && !this.authn.stillLive(p.session)) throw new KryptonError('FORBIDDEN', 'the session of this watch ended');
      return this.mayRead(p, link);
    };
  }

  private mayRead(p: Principal, link: Link): boolean {
    if (link === TOKENS_LINK || link.startsWith(`${TOKENS_LINK}/`)) return false;
    return allows(this.grantsOf(p.link), 'GET', link);
  }

  private presentedToken(ctx: Koa.Context): string | undefined {
    const header = ctx.get(AUTH_TOKEN_HEADER);
    if (header) return header;
    const cookie = cookieValue(ctx.get('cookie') || undefined, AUTH_COOKIE);
    // Forwarding copies x-xenon-* headers, so the owner sees a cookie's token too.
    if (cookie !== undefined) ctx.req.headers[AUTH_TOKEN_HEADER] = cookie;
    return cookie;
  }

  private principalOf(ctx: Koa.Context, isMember: () => boolean): Principal | Promise<Principal> {
    const token = this.presentedToken(ctx);
    if (token === undefined) return isMember() ? SYSTEM : GUEST;
    const session = this.authn.session(token);
    const principal = (s: Session | undefined): Principal => (s ? { kind: 'user', link: s.userLink, session: s } : GUEST);
    return session instanceof Promise ? session.then(principal) : principal(session);
  }

  private authorize(p: Principal, method: string, path: string, target: string | undefined): void {
    if (p.kind === 'system') return;
    const verb = verbOf(method);
    if (verb === undefined) throw forbidden();
    // Session documents are the system user's; their factory lists (filtered to nothing) stay open like any other.
    if (path.startsWith(`${TOKENS_LINK}/`) || (path === TOKENS_LINK && verb !== 'GET')) throw forbidden();
    const grants = this.grantsOf(p.link);
    const watched = watchedLinkOf(path);
    if (watched !== undefined) {
      // Events would carry password hashes; a factory watch is filtered per event like a list.
      if (watched === CREDENTIALS_LINK || watched.startsWith(`${CREDENTIALS_LINK}/`)) throw forbidden();
      if (this.d.registry.factory(watched) || allows(grants, 'GET', watched)) return;
      throw forbidden();
    }
    if (verb === 'GET' && (path === '/' || this.d.registry.factory(path) || QUERY_FACTORIES.includes(path))) return;
    if (verb === 'POST' && QUERY_FACTORIES.includes(path)) return;
    // Query tasks and pages are bound to their creator (server/tasks/query-tasks.ts).
    if (QUERY_FACTORIES.some((f) => path.startsWith(`${f}/`)) || path.startsWith(PAGE_PATH)) return;
    if (!allows(grants, verb, path)) throw forbidden();
    if (target !== undefined) {
      // The helper's target host runs a request without a token as the system user.
      if (p.kind === 'guest' || !allows(grants, verb, target)) throw forbidden();
    }
  }

  private grantsOf(userLink: string): Grant[] {
    const now = this.d.clock.nowMicros();
    if (this.rules !== undefined && now >= this.rules.nextExpiryMicros) {
      this.rules = undefined;
      this.grants.clear();
    }
    let g = this.grants.get(userLink);
    if (g === undefined) {
      if (this.grants.size >= limits.grantsCachedMax) this.grants.clear();
      g = grantsFor(this.roleRules(now), userLink);
      this.grants.set(userLink, g);
    }
    return g;
  }

  private roleRules(now: number): RoleRule[] {
    if (this.rules === undefined) {
      const list: RoleRule[] = [];
      let nextExpiryMicros = Infinity;
      for (const link of this.d.index.children(ROLES_LINK, now)) {
        const doc = this.d.index.latest(link);
        const rule = doc && ruleOf(doc as JsonObject);
        if (!rule) continue;
        list.push(rule);
        if (doc.documentExpirationTimeMicros > 0) nextExpiryMicros = Math.min(nextExpiryMicros, doc.documentExpirationTimeMicros);
      }
      this.rules = { list, nextExpiryMicros };
    }
    return this.rules.list;
  }

  /**
   * Hashes the password of a credentials write before the route reads the body, and refuses
   * queries that name the stored hash (its value would leak through matches).
   */
  private async guardSecrets(ctx: Koa.Context, raw: string): Promise<void> {
    if (raw.startsWith(CREDENTIALS_LINK) && (ctx.method === 'POST' || ctx.method === 'PUT' || ctx.method === 'PATCH')) {
      const body = await readJsonBody(ctx.req);
      if (!isObject(body) || body.privateKey === undefined || body.privateKey === null) return;
      const { privateKey, ...rest } = body;
      if (typeof privateKey !== 'string' || privateKey === '')
        throw new KryptonError('INVALID_BODY', 'privateKey must be a non-empty string');
      if (privateKey.length > limits.passwordCharsMax)
        throw new KryptonError('INVALID_BODY', `privateKey is longer than ${limits.passwordCharsMax} characters`);
      rest[PASSWORD_HASH_FIELD] = await hashPassword(privateKey);
      replaceBody(ctx.req, Buffer.from(JSON.stringify(rest)));
      return;
    }
    if (ctx.method === 'POST' && QUERY_FACTORIES.includes(raw)) {
      const body = await readRawBody(ctx.req);
      if (body?.includes(PASSWORD_HASH_FIELD) && namesProperty(await readJsonBody(ctx.req), PASSWORD_HASH_FIELD)) {
        throw new KryptonError('INVALID_QUERY', `${PASSWORD_HASH_FIELD} cannot be queried`);
      }
    }
  }

  /** Drops stored password hashes from whatever this response carries. */
  private redact(ctx: Koa.Context, raw: string): void {
    if (
      !(
        raw.startsWith(CREDENTIALS_LINK) ||
        raw.startsWith('/core/query-tasks') ||
        raw.startsWith('/core/local-query-tasks') ||
        raw.startsWith(PAGE_PATH)
      )
    )
      return;
    const body: unknown = ctx.body;
    if (!isObject(body)) return;
    let out = withoutHash(body);
    if (isObject(out.documents)) out = { ...out, documents: documentsWithoutHash(out.documents) };
    if (isObject(out.results) && isObject(out.results.documents))
      out = { ...out, results: { ...out.results, documents: documentsWithoutHash(out.results.documents) } };
    if (out !== body) ctx.body = out;
  }
}

function withoutHash(doc: JsonObject): JsonObject {
  if (doc.documentKind !== CREDENTIALS_KIND || !(PASSWORD_HASH_FIELD in doc)) return doc;
  const { [PASSWORD_HASH_FIELD]: _hash, ...rest } = doc;
  return rest;
}

function documentsWithoutHash(docs: JsonObject): JsonObject {
  if (!Object.values(docs).some((d) => isObject(d) && d.documentKind === CREDENTIALS_KIND)) return docs;
  const out: JsonObject = {};
  for (const [k, v] of Object.entries(docs)) out[k] = isObject(v) ? withoutHash(v) : v;
  return out;
}

/** Whether a query spec names `field` as a property (term, sort or range). */
function namesProperty(v: unknown, field: string): boolean {
  if (Array.isArray(v)) return v.some((x) => namesProperty(x, field));
  if (!isObject(v)) return false;
  for (const [k, x] of Object.entries(v)) {
    if (k === 'propertyName' && typeof x === 'string' && (x === field || x.startsWith(`${field}.`))) return true;
    if (namesProperty(x, field)) return true;
  }
  return false;
}
