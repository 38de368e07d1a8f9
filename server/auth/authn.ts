/**
 * Authentication: `POST /core/authn/basic` (Xenon's BasicAuthenticationService) and the sessions
 * it opens. LOGIN checks HTTP Basic credentials (the user found by `email`, the password against
 * the scrypt hash of a credentials document with that `userEmail`), then records a session
 * document under /core/authz/tokens (replicated, expiring with the token) through this host's
 * own HTTP port, so the write is routed to its owner and acknowledged by a quorum like any
 * other; the token goes back in `x-xenon-auth-token` and the `xenon-auth-cookie` cookie. LOGOUT
 * deletes the session. A token is honoured by any host holding its session document; a host
 * that does not hold it yet (it lags, or was down) asks the document's owner.
 *
 * Failures follow Xenon: no Basic credentials 401 (with WWW-Authenticate), malformed ones 400, an
 * unknown user or a wrong password 403 (after the same scrypt work either way).
 */

import crypto from 'node:crypto';
import type Koa from 'koa';
import type { Logger } from 'pino';
import {
  AUTH_COOKIE,
  AUTH_TOKEN_HEADER,
  CREDENTIALS_LINK,
  isTokenShaped,
  parseBasicAuthorization,
  TOKENS_LINK,
  USERS_LINK,
} from '../../lib/authz.js';
import type { JsonObject, ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import { tokenService } from '../../lib/services/authz-tokens.js';
import { isExpired } from '../../lib/verbs.js';
import type { DocumentIndex } from '../../index/views.js';
import { readJsonBody } from '../net/body.js';
import type { Clock } from '../base/clock.js';
import { notAllowed } from '../net/http-errors.js';
import { verifyDecoy, verifyPassword } from './passwords.js';
import type { PeerClient } from '../net/peers.js';
import type { Selectors } from '../membership/selectors.js';

export interface AuthnDeps {
  index: DocumentIndex;
  clock: Clock;
  peers: PeerClient;
  selfUri: () => string;
  selectors: Selectors;
  logger: Logger;
  operationTimeoutMicros: number;
}

/** A live session: who it is for and when it ends. */
export interface Session {
  userLink: string;
  tokenLink: string;
  expiresMicros: number;
}

const tokenLinks = new Map<string, string>();

/** The session document of a token: named by its SHA-256, so the document reveals no token. */
export function tokenLinkOf(token: string): string {
  let link = tokenLinks.get(token);
  if (link === undefined) {
    link = `${TOKENS_LINK}/${crypto.createHash('sha256').update(token, 'utf8').digest('hex')}`;
    if (tokenLinks.size >= limits.tokenLinksCachedMax) tokenLinks.clear();
    tokenLinks.set(token, link);
  }
  return link;
}

function isLive(doc: ServiceDocument | undefined, now: number): doc is ServiceDocument {
  return doc !== undefined && doc.documentUpdateAction !== 'DELETE' && !isExpired(doc, now);
}

export class Authn {
  constructor(private readonly d: AuthnDeps) {}

  /** `POST /core/authn/basic` with `{"requestType": "LOGIN" | "LOGOUT"}` (LOGIN when absent, as in Xenon). */
  async handle(ctx: Koa.Context, presentedToken: string | undefined): Promise<void> {
    if (ctx.method !== 'POST') notAllowed(ctx.method);
    const raw = await readJsonBody(ctx.req);
    const body = (raw !== null && typeof raw === 'object' && !Array.isArray(raw) ? raw : {}) as JsonObject;
    const type = body.requestType ?? 'LOGIN';
    if (type === 'LOGOUT') return this.logout(ctx, presentedToken);
    if (type !== 'LOGIN') throw new KryptonError('INVALID_BODY', `unknown requestType '${String(type)}' (expected LOGIN or LOGOUT)`);
    const seconds = body.sessionExpirationSeconds;
    if (
      seconds != null &&
      (typeof seconds !== 'number' || !Number.isInteger(seconds) || seconds < 1 || seconds > limits.authSessionSecondsMax)
    ) {
      throw new KryptonError('INVALID_BODY', `sessionExpirationSeconds must be an integer from 1 to ${limits.authSessionSecondsMax}`);
    }
    const creds = parseBasicAuthorization(ctx.get('authorization') || undefined);
    if (creds.kind === 'missing') {
      ctx.set('WWW-Authenticate', 'Basic realm="xenon"');
      throw new KryptonError('UNAUTHORIZED', 'Basic credentials are required: Authorization: Basic base64(email:password)');
    }
    if (creds.kind === 'malformed')
      throw new KryptonError('INVALID_ARGUMENT', 'malformed Authorization header: expected Basic base64(email:password)');
    const userLink = this.userByEmail(creds.user);
    const ok =
      userLink !== undefined && creds.password.length <= limits.passwordCharsMax
        ? await this.passwordMatches(creds.user, creds.password)
        : await verifyDecoy(creds.password.slice(0, limits.passwordCharsMax));
    if (!ok || userLink === undefined) throw new KryptonError('FORBIDDEN', 'forbidden');

    const lifetimeMicros = typeof seconds === 'number' ? seconds * 1_000_000 : limits.authTokenLifetimeMicros;
    const token = crypto.randomBytes(32).toString('base64url');
    const expiresMicros = this.d.clock.nowMicros() + lifetimeMicros;
    const r = await this.self('POST', TOKENS_LINK, {
      documentSelfLink: tokenLinkOf(token),
      userLink,
      documentExpirationTimeMicros: expiresMicros,
    });
    if (r.status !== 200)
      throw new KryptonError('PEER_UNAVAILABLE', `the session could not be recorded (${r.status}): ${messageOf(r.body)}`);
    ctx.set(AUTH_TOKEN_HEADER, token);
    ctx.append(
      'Set-Cookie',
      `${AUTH_COOKIE}=${token}; Path=/; Max-Age=${Math.floor(lifetimeMicros / 1_000_000)}; HttpOnly; SameSite=Strict`,
    );
    ctx.body = { requestType: 'LOGIN', userLink, expirationTimeMicros: expiresMicros };
  }

  private async logout(ctx: Koa.Context, token: string | undefined): Promise<void> {
    if (token !== undefined && isTokenShaped(token)) {
      const r = await this.self('DELETE', tokenLinkOf(token), {});
      if (r.status !== 200)
        throw new KryptonError('PEER_UNAVAILABLE', `the session could not be ended (${r.status}): ${messageOf(r.body)}`);
    }
    ctx.append('Set-Cookie', `${AUTH_COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict`);
    ctx.body = { requestType: 'LOGOUT' };
  }

  /**
   * The session a token opens, or undefined when it is unknown, ended or expired, or its user
   * was deleted. Looks in this host's index first, then asks the session's owner.
   */
  session(token: string): Session | undefined | Promise<Session | undefined> {
    if (!tokenLinks.has(token) && !isTokenShaped(token)) return undefined;
    const tokenLink = tokenLinkOf(token);
    const doc = this.d.index.latest(tokenLink);
    // Answered from this host's index when it can be: no promise on the common path.
    if (doc !== undefined || this.d.selectors.ownedHere(tokenService.nodeSelector, tokenLink)) return this.sessionOf(doc, tokenLink);
    return this.self('GET', tokenLink, undefined, limits.authTokenLookupTimeoutMicros).then(
      (r) => this.sessionOf(r.status === 200 ? (r.body as ServiceDocument) : undefined, tokenLink),
      () => undefined,
    );
  }

  private sessionOf(doc: ServiceDocument | undefined, tokenLink: string): Session | undefined {
    const now = this.d.clock.nowMicros();
    if (!isLive(doc, now)) return undefined;
    const userLink = (doc as JsonObject).userLink;
    if (typeof userLink !== 'string') return undefined;
    const user = this.d.index.latest(userLink);
    // A user this host does not hold yet was there when the token was issued; a deleted one is gone.
    if (user !== undefined && !isLive(user, now)) return undefined;
    return { userLink, tokenLink, expiresMicros: doc.documentExpirationTimeMicros };
  }

  /** Whether a session checked earlier still stands on this host (for long-lived watches). */
  stillLive(s: Session): boolean {
    const now = this.d.clock.nowMicros();
    if (now >= s.expiresMicros) return false;
    const doc = this.d.index.latest(s.tokenLink);
    return doc === undefined || isLive(doc, now);
  }

  /** The user with this email (the first by link if several claim it). */
  private userByEmail(email: string): string | undefined {
    const now = this.d.clock.nowMicros();
    const found = this.d.index.children(USERS_LINK, now).filter((l) => (this.d.index.latest(l) as JsonObject | undefined)?.email === email);
    return found.sort()[0];
  }

  private async passwordMatches(email: string, password: string): Promise<boolean> {
    const now = this.d.clock.nowMicros();
    const hashes = this.d.index
      .children(CREDENTIALS_LINK, now)
      .map((l) => this.d.index.latest(l) as JsonObject | undefined)
      .filter((c) => c?.userEmail === email)
      .map((c) => c!.privateKeyHash);
    if (hashes.length === 0) return verifyDecoy(password);
    for (const h of hashes) if (await verifyPassword(password, h)) return true;
    return false;
  }

  /** A request to this host as the system user: it routes the write to the owner like any other. */
  private self(
    method: string,
    path: string,
    body: unknown,
    timeoutMicros = this.d.operationTimeoutMicros,
  ): Promise<{ status: number; body: unknown }> {
    return this.d.peers.json(this.d.selfUri() + path, { method, body, timeoutMs: Math.max(1, msFromMicros(timeoutMicros)) });
  }
}

function messageOf(body: unknown): string {
  const m = (body as { message?: unknown } | undefined)?.message;
  return typeof m === 'string' ? m : 'no message';
}
