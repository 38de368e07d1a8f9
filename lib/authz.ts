/**
 * Access control rules, as pure functions: the well-known links of the authorization services,
 * how a role's path prefixes and user links cover a path, which verbs a principal's roles grant
 * on a path, how a request maps to the resource it touches (a watch reads its document), and the
 * small parsers the login route needs (HTTP Basic credentials, cookies, token shape). The host
 * (server/auth/authz.ts) resolves who is calling and asks these functions what that caller may do.
 *
 * Krypton's model is Xenon's with one simplification: a role names its users (`userLinks`) and
 * the paths it covers (`pathPrefixes`) directly, where Xenon points at a user group and a
 * resource group that are queries. As in Xenon, only ALLOW roles exist and roles add up.
 */

import { KryptonError } from './errors.js';

export const USERS_LINK = '/core/authz/users';
export const ROLES_LINK = '/core/authz/roles';
export const CREDENTIALS_LINK = '/core/auth/credentials';
/** Login sessions: one document per token, named by the token's SHA-256, reserved to the system user. */
export const TOKENS_LINK = '/core/authz/tokens';
export const AUTHN_BASIC_LINK = '/core/authn/basic';
/** Who a host acts as for itself and its peers; never a document, never a login. */
export const SYSTEM_USER_LINK = '/core/authz/system-user';
/** Who a request without a valid token acts as; roles may name it to open paths to everyone. */
export const GUEST_USER_LINK = '/core/authz/guest-user';

export const AUTH_TOKEN_HEADER = 'x-xenon-auth-token';
export const AUTH_COOKIE = 'xenon-auth-cookie';

export const VERBS = ['GET', 'POST', 'PATCH', 'PUT', 'DELETE', 'OPTIONS'] as const;
export type Verb = (typeof VERBS)[number];

export function isVerb(s: unknown): s is Verb {
  return typeof s === 'string' && (VERBS as readonly string[]).includes(s);
}

/** The verb a role must grant for an HTTP method; HEAD reads like GET. */
export function verbOf(method: string): Verb | undefined {
  const m = method.toUpperCase();
  if (m === 'HEAD') return 'GET';
  return isVerb(m) ? m : undefined;
}

/**
 * Whether a role's prefix covers a path. A prefix covers itself and everything below it by whole
 * segments (`/core/examples` covers `/core/examples/one`, not `/core/examples-3x`); a prefix
 * ending in `*` covers any path starting with the text before the `*` (`/core/examples/team-a-*`).
 * `/` covers every path. The same rule matches a role's `userLinks` against a user's link.
 */
export function pathCovers(prefix: string, path: string): boolean {
  if (prefix.endsWith('*')) return path.startsWith(prefix.slice(0, -1));
  if (prefix === '/' || prefix === path) return true;
  return path.startsWith(prefix.endsWith('/') ? prefix : `${prefix}/`);
}

/** What a role says, read defensively from a stored role document. */
export interface RoleRule {
  userLinks: readonly string[];
  pathPrefixes: readonly string[];
  verbs: readonly Verb[];
}

export function ruleOf(doc: Record<string, unknown>): RoleRule | undefined {
  const strings = (v: unknown) => (Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : []);
  if (doc.policy !== 'ALLOW') return undefined;
  const verbs = strings(doc.verbs).filter(isVerb);
  const rule = { userLinks: strings(doc.userLinks), pathPrefixes: strings(doc.pathPrefixes), verbs };
  return rule.userLinks.length && rule.pathPrefixes.length && verbs.length ? rule : undefined;
}

/** One grant a principal holds: these verbs on paths under these prefixes. */
export interface Grant {
  verbs: ReadonlySet<Verb>;
  pathPrefixes: readonly string[];
}

/** The grants of the roles that name `userLink` (exactly or by a covering prefix). */
export function grantsFor(rules: Iterable<RoleRule>, userLink: string): Grant[] {
  const out: Grant[] = [];
  for (const r of rules) {
    if (r.userLinks.some((u) => pathCovers(u, userLink))) out.push({ verbs: new Set(r.verbs), pathPrefixes: r.pathPrefixes });
  }
  return out;
}

/** Whether any grant allows `verb` on `path` (roles add up; nothing is allowed by default). */
export function allows(grants: readonly Grant[], verb: Verb, path: string): boolean {
  for (const g of grants) {
    if (!g.verbs.has(verb)) continue;
    for (const p of g.pathPrefixes) if (pathCovers(p, path)) return true;
  }
  return false;
}

/**
 * The path an authorization decision is made on: percent-decoded (routes decode their
 * parameters, so `/core/node-groups/def%61ult` is the default group), one trailing slash
 * dropped. Dot segments, empty segments and encoded slashes would let one path name another's
 * resource under a different spelling, so they are refused.
 */
export function authzPath(rawPath: string): string {
  // The usual path has nothing to decode or refuse.
  if (!rawPath.includes('%') && !rawPath.includes('//') && !rawPath.includes('/.')) {
    return rawPath.length > 1 && rawPath.endsWith('/') ? rawPath.slice(0, -1) : rawPath;
  }
  let p: string;
  try {
    p = decodeURIComponent(rawPath);
  } catch {
    throw new KryptonError('INVALID_ARGUMENT', `malformed path: ${rawPath}`);
  }
  if (/%2f/i.test(rawPath) || p.includes('//') || /\/\.\.?(\/|$)/.test(p)) {
    throw new KryptonError('INVALID_ARGUMENT', `path may not contain empty, '.' or '..' segments or encoded slashes: ${rawPath}`);
  }
  return p.length > 1 && p.endsWith('/') ? p.slice(0, -1) : p;
}

/** `<link>/subscriptions` and `<link>/subscriptions/stream` read `<link>`: the link, or undefined for other paths. */
export function watchedLinkOf(path: string): string | undefined {
  for (const suffix of ['/subscriptions/stream', '/subscriptions']) {
    if (path.endsWith(suffix) && path.length > suffix.length) return path.slice(0, -suffix.length);
  }
  return undefined;
}

export type BasicCredentials = { kind: 'missing' } | { kind: 'malformed' } | { kind: 'ok'; user: string; password: string };

/** An `Authorization: Basic <base64(user:password)>` header, the way Xenon reads it. */
export function parseBasicAuthorization(header: string | undefined): BasicCredentials {
  if (header === undefined || header === '') return { kind: 'missing' };
  const parts = header.trim().split(/\s+/);
  if (parts.length !== 2 || parts[0]!.toLowerCase() !== 'basic' || !/^[A-Za-z0-9+/]+={0,2}$/.test(parts[1]!)) return { kind: 'malformed' };
  const text = Buffer.from(parts[1]!, 'base64').toString('utf8');
  const colon = text.indexOf(':');
  if (colon <= 0) return { kind: 'malformed' };
  return { kind: 'ok', user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** One cookie's value from a `Cookie` header, or undefined. */
export function cookieValue(header: string | undefined, name: string): string | undefined {
  if (!header) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim() || undefined;
  }
  return undefined;
}

/** A token is 32 random bytes in base64url; anything else is not worth a lookup. */
export function isTokenShaped(token: string): boolean {
  return /^[A-Za-z0-9_-]{43}$/.test(token);
}

/** What a caller may see of stored documents: a factory list, a query's hits, a watch's events. */
export interface ReadScope {
  /** Whether the caller may GET this link; absent means everything (the system user, or authorization off). */
  mayRead?: (link: string) => boolean;
  /** Who owns the query tasks and pages the caller creates; absent means the caller sees every task. */
  owner?: string;
}

/** A stored password: `scrypt$<N>$<r>$<p>$<salt base64>$<key base64>`. */
export interface PasswordHash {
  N: number;
  r: number;
  p: number;
  salt: Buffer;
  key: Buffer;
}

export const PASSWORD_HASH_FIELD = 'privateKeyHash';

export function formatPasswordHash(h: PasswordHash): string {
  return `scrypt$${h.N}$${h.r}$${h.p}$${h.salt.toString('base64')}$${h.key.toString('base64')}`;
}

/** Parses a stored hash; undefined when it is not one, or names costs no host would pay. */
export function parsePasswordHash(s: unknown, memoryBytesMax: number): PasswordHash | undefined {
  if (typeof s !== 'string') return undefined;
  const m = /^scrypt\$(\d{1,8})\$(\d{1,2})\$(\d{1,2})\$([A-Za-z0-9+/]{16,}={0,2})\$([A-Za-z0-9+/]{16,}={0,2})$/.exec(s);
  if (!m) return undefined;
  const [N, r, p] = [Number(m[1]), Number(m[2]), Number(m[3])];
  if (N < 2 || (N & (N - 1)) !== 0 || r < 1 || p < 1 || p > 16 || 128 * N * r > memoryBytesMax) return undefined;
  return { N, r, p, salt: Buffer.from(m[4]!, 'base64'), key: Buffer.from(m[5]!, 'base64') };
}
