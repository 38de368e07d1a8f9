/**
 * Authorization on one in-process host (--isAuthorizationEnabled with an admin): logins and their
 * failures, sessions that expire (moved clock) or end with LOGOUT, 403 for callers without a
 * token or a role, a read-only role that can GET but not PATCH, factory lists, queries and
 * watches that only show what the caller may read, password hashes that never leave the host,
 * session documents reserved to the system user, tasks that still run (self-calls prove
 * membership with the host's own secret), and an admin bootstrap that writes nothing twice.
 */
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { adminLinks } from '../../server/auth/authz-bootstrap.js';
import { openStream } from '../../tools/recipes/sse.js';
import { shiftableClock, type ShiftableClock } from '../support/clock.js';
import { startHost, type TestHost } from '../support/hosts.js';
import type { Client } from '../support/http.js';
import { waitFor } from '../support/wait.js';

interface List {
  documentLinks: string[];
  documentCount: number;
  documents?: Record<string, Record<string, unknown>>;
}
interface Task {
  results: List & { nextPageLink?: string };
  documentSelfLink: string;
  taskInfo: { stage: string };
}

const ADMIN = 'admin@localhost';
const ADMIN_PASSWORD = 'change-me-now';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const as = (token: string) => ({ 'x-xenon-auth-token': token });

async function login(c: Client, user: string, password: string, body: Record<string, unknown> = {}): Promise<string> {
  const r = await c.send('POST', '/core/authn/basic', { requestType: 'LOGIN', ...body }, { authorization: basic(user, password) });
  assert.is(r.status, 200, r.text);
  const token = r.headers['x-xenon-auth-token'];
  assert.type(token, 'string');
  return token as string;
}

/** Creates a user with a password and one role; returns the user's link. */
async function addUser(
  c: Client,
  adminToken: string,
  email: string,
  password: string,
  role: { pathPrefixes: string[]; verbs: string[] },
): Promise<string> {
  const id = email.replace(/@.*/, '');
  const u = await c.send('POST', '/core/authz/users', { documentSelfLink: id, email }, as(adminToken));
  assert.is(u.status, 200, u.text);
  const cr = await c.send(
    'POST',
    '/core/auth/credentials',
    { documentSelfLink: id, userEmail: email, privateKey: password },
    as(adminToken),
  );
  assert.is(cr.status, 200, cr.text);
  const r = await c.send(
    'POST',
    '/core/authz/roles',
    { documentSelfLink: id, userLinks: [`/core/authz/users/${id}`], policy: 'ALLOW', ...role },
    as(adminToken),
  );
  assert.is(r.status, 200, r.text);
  return `/core/authz/users/${id}`;
}

const t = suite<{ h: TestHost; clock: ShiftableClock; admin: string; reader: string }>('authorization on one host');

t.before(async (ctx) => {
  ctx.clock = shiftableClock();
  ctx.h = await startHost({ isAuthorizationEnabled: true, adminUser: ADMIN, adminPassword: ADMIN_PASSWORD }, undefined, {
    clock: ctx.clock,
  });
  await ctx.h.host.cluster.admin!.ready;
  const c = ctx.h.client;
  ctx.admin = await login(c, ADMIN, ADMIN_PASSWORD);
  for (const id of ['pub-1', 'pub-2', 'priv-1']) {
    const r = await c.send('POST', '/core/examples', { documentSelfLink: id, name: id }, as(ctx.admin));
    assert.is(r.status, 200, r.text);
  }
  await addUser(c, ctx.admin, 'reader@localhost', 'reader-pw', { pathPrefixes: ['/core/examples/pub-*'], verbs: ['GET'] });
  ctx.reader = await login(c, 'reader@localhost', 'reader-pw');
});
t.after(async (ctx) => {
  await ctx.h.close();
});

t('without a token: 403 with Xenon error body; lists answer empty, as for Xenon guests', async ({ h }) => {
  const c = h.client;
  for (const [method, path, body] of [
    ['GET', '/core/examples/pub-1'],
    ['POST', '/core/examples', { name: 'x' }],
    ['PATCH', '/core/examples/pub-1', { name: 'y' }],
    ['GET', '/core/management'],
    ['DELETE', '/core/management'],
    ['GET', '/core/authz/users/reader'],
  ] as [string, string, unknown?][]) {
    const r = await c.send(method, path, body);
    assert.is(r.status, 403, `${method} ${path}: ${r.text}`);
    assert.equal(r.body, { message: 'forbidden', statusCode: 403, documentKind: KINDS.serviceErrorResponse, errorCode: 0 });
  }
  const list = await c.get<List>('/core/examples');
  assert.is(list.status, 200);
  assert.equal(list.body.documentLinks, []);
  // A token that is not a session is the guest, like no token.
  assert.is((await c.send('GET', '/core/examples/pub-1', undefined, as('x'.repeat(43)))).status, 403);
  // The host still works: it reports authorization truthfully to those who may ask.
  assert.is(
    (await c.send<{ isAuthorizationEnabled: boolean }>('GET', '/core/management', undefined, as(await login(c, ADMIN, ADMIN_PASSWORD))))
      .body.isAuthorizationEnabled,
    true,
  );
});

t('login failures follow Xenon: 401 without credentials, 400 malformed, 403 unknown user or wrong password', async ({ h }) => {
  const c = h.client;
  const none = await c.post('/core/authn/basic', { requestType: 'LOGIN' });
  assert.is(none.status, 401);
  assert.is(none.headers['www-authenticate'], 'Basic realm="xenon"');
  assert.is(none.body.statusCode, 401);
  assert.is((await c.send('POST', '/core/authn/basic', { requestType: 'LOGIN' }, { authorization: 'Bearer x' })).status, 400);
  assert.is((await c.send('POST', '/core/authn/basic', { requestType: 'LOGIN' }, { authorization: basic(ADMIN, 'wrong') })).status, 403);
  assert.is(
    (await c.send('POST', '/core/authn/basic', { requestType: 'LOGIN' }, { authorization: basic('nobody@localhost', 'x') })).status,
    403,
  );
  assert.is(
    (await c.send('POST', '/core/authn/basic', { requestType: 'DANCE' }, { authorization: basic(ADMIN, ADMIN_PASSWORD) })).status,
    400,
  );
  assert.is((await c.send('GET', '/core/authn/basic')).status, 405);
  // No requestType means LOGIN, as in Xenon; the cookie carries the same token.
  const r = await c.send('POST', '/core/authn/basic', {}, { authorization: basic(ADMIN, ADMIN_PASSWORD) });
  assert.is(r.status, 200);
  assert.match(
    String(r.headers['set-cookie']),
    new RegExp(`^xenon-auth-cookie=${r.headers['x-xenon-auth-token'] as string}; Path=/; Max-Age=3600`),
  );
});

t('a read-only role can GET but not PATCH, and only under its prefixes; a cookie works like the header', async ({ h, reader }) => {
  const c = h.client;
  assert.is((await c.send('GET', '/core/examples/pub-1', undefined, as(reader))).status, 200);
  assert.is((await c.send('GET', '/core/examples/pub-1?documentVersion=0', undefined, as(reader))).status, 200);
  const patch = await c.send('PATCH', '/core/examples/pub-1', { name: 'changed' }, as(reader));
  assert.is(patch.status, 403);
  assert.is(patch.body.message, 'forbidden');
  assert.is((await c.send('GET', '/core/examples/priv-1', undefined, as(reader))).status, 403);
  assert.is((await c.send('POST', '/core/examples', { name: 'new' }, as(reader))).status, 403);
  assert.is((await c.send('GET', '/core/examples/pub-1', undefined, { cookie: `a=b; xenon-auth-cookie=${reader}` })).status, 200);
  assert.is((await c.send('GET', '/core/examples/pub-1')).status, 403);
});

t('factory lists and queries only show what the caller may GET, counted and paged after filtering', async ({ h, reader, admin }) => {
  const c = h.client;
  const list = await c.send<List>('GET', '/core/examples?expand', undefined, as(reader));
  assert.equal([...list.body.documentLinks].sort(), ['/core/examples/pub-1', '/core/examples/pub-2']);
  assert.is(list.body.documentCount, 2);
  assert.equal(Object.keys(list.body.documents!).sort(), ['/core/examples/pub-1', '/core/examples/pub-2']);
  assert.is((await c.send<List>('GET', '/core/examples', undefined, as(admin))).body.documentCount, 3);

  const kind = { term: { propertyName: 'documentKind', matchValue: KINDS.example } };
  const q = (options: string[], extra: Record<string, unknown> = {}) => ({
    taskInfo: { isDirect: true },
    querySpec: { options, query: kind, ...extra },
  });
  const expanded = await c.send<Task>('POST', '/core/query-tasks', q(['EXPAND_CONTENT']), as(reader));
  assert.equal([...expanded.body.results.documentLinks].sort(), ['/core/examples/pub-1', '/core/examples/pub-2']);
  assert.is((await c.send<Task>('POST', '/core/local-query-tasks', q(['COUNT']), as(reader))).body.results.documentCount, 2);
  assert.is((await c.send<Task>('POST', '/core/query-tasks', q(['COUNT']), as(admin))).body.results.documentCount, 3);
  assert.is((await c.send<Task>('POST', '/core/query-tasks', q(['COUNT']))).body.results.documentCount, 0);
  const all = await c.send<Task>('POST', '/core/query-tasks', q(['INCLUDE_ALL_VERSIONS']), as(reader));
  assert.ok(
    all.body.results.documentLinks.every((l) => l.startsWith('/core/examples/pub-')),
    all.text,
  );

  // Pages hold one filtered hit each, and are the creator's alone.
  const paged = await c.send<Task>('POST', '/core/query-tasks', q([], { resultLimit: 1 }), as(reader));
  let next = paged.body.results.nextPageLink;
  const seen: string[] = [];
  while (next) {
    assert.is((await c.send('GET', next, undefined, as(admin))).status, 200);
    assert.is((await c.send('GET', next)).status, 404);
    const page = await c.send<Task>('GET', next, undefined, as(reader));
    seen.push(...page.body.results.documentLinks);
    next = page.body.results.nextPageLink;
  }
  assert.equal(seen.sort(), ['/core/examples/pub-1', '/core/examples/pub-2']);

  // A polled task is visible to its creator (and the system), not to other callers.
  const polled = await c.send<Task>('POST', '/core/query-tasks', { querySpec: { query: kind } }, as(admin));
  assert.is(polled.status, 202);
  await waitFor(
    'task finished',
    async () => (await c.send<Task>('GET', polled.body.documentSelfLink, undefined, as(admin))).body.taskInfo.stage === 'FINISHED',
  );
  assert.is((await c.send('GET', polled.body.documentSelfLink, undefined, as(reader))).status, 404);
  assert.not.ok(
    (await c.send<List>('GET', '/core/query-tasks', undefined, as(reader))).body.documentLinks.includes(polled.body.documentSelfLink),
  );
  assert.ok(
    (await c.send<List>('GET', '/core/query-tasks', undefined, as(admin))).body.documentLinks.includes(polled.body.documentSelfLink),
  );
});

t('OData on a factory and its pages only show what the caller may GET', async ({ h, reader, admin }) => {
  const c = h.client;
  const filter = `$filter=${encodeURIComponent("name ne 'nobody'")}`;
  const mine = await c.send<List & { totalCount: number }>('GET', `/core/examples?${filter}`, undefined, as(reader));
  assert.is(mine.status, 200, mine.text);
  assert.equal([...mine.body.documentLinks].sort(), ['/core/examples/pub-1', '/core/examples/pub-2']);
  assert.equal(Object.keys(mine.body.documents!).sort(), ['/core/examples/pub-1', '/core/examples/pub-2']);
  assert.is(mine.body.totalCount, 2);
  assert.is((await c.send<List>('GET', `/core/examples?${filter}&$count=true`, undefined, as(reader))).body.documentCount, 2);
  assert.is((await c.send<List>('GET', `/core/examples?${filter}&$count=true`, undefined, as(admin))).body.documentCount, 3);
  const seen: string[] = [];
  let page = await c.send<List & { nextPageLink?: string }>('GET', `/core/examples?${filter}&$limit=1`, undefined, as(reader));
  for (;;) {
    assert.is(page.status, 200, page.text);
    seen.push(...page.body.documentLinks);
    if (page.body.nextPageLink === undefined) break;
    page = await c.send<List & { nextPageLink?: string }>('GET', page.body.nextPageLink, undefined, as(reader));
  }
  assert.equal(seen.sort(), ['/core/examples/pub-1', '/core/examples/pub-2']);
  // A guest sees what a guest may read, as in a plain listing: nothing here.
  const guestList = await c.send<List>('GET', '/core/examples');
  const guest = await c.send<List>('GET', `/core/examples?${filter}`);
  assert.is(guest.status, guestList.status);
  assert.equal(guest.body.documentLinks ?? [], []);
});

t('password hashes never leave the host and cannot be queried', async ({ h, admin }) => {
  const c = h.client;
  const link = adminLinks(ADMIN).credentials;
  const one = await c.send('GET', link, undefined, as(admin));
  assert.is(one.status, 200);
  assert.is(one.body.userEmail, ADMIN);
  assert.not.ok('privateKeyHash' in one.body || 'privateKey' in one.body, one.text);
  const stored = h.host.index.latest(link) as unknown as Record<string, unknown>;
  assert.match(String(stored.privateKeyHash), /^scrypt\$16384\$8\$1\$/); // hashed with a salt, held for logins
  assert.not.ok(JSON.stringify(stored).includes(ADMIN_PASSWORD));
  const list = await c.send<List>('GET', '/core/auth/credentials?expand', undefined, as(admin));
  assert.ok(list.body.documentCount >= 2);
  assert.not.ok(list.text.includes('privateKeyHash'), list.text);
  const q = await c.send<Task>(
    'POST',
    '/core/query-tasks',
    {
      taskInfo: { isDirect: true },
      querySpec: { options: ['EXPAND_CONTENT', 'INCLUDE_ALL_VERSIONS'], query: { term: { propertyName: 'userEmail', matchValue: ADMIN } } },
    },
    as(admin),
  );
  assert.ok(q.body.results.documentLinks.length >= 1);
  assert.not.ok(q.text.includes('privateKeyHash'), q.text);
  const probe = await c.send(
    'POST',
    '/core/query-tasks',
    {
      taskInfo: { isDirect: true },
      querySpec: { query: { term: { propertyName: 'privateKeyHash', matchValue: 'scrypt*', matchType: 'WILDCARD' } } },
    },
    as(admin),
  );
  assert.is(probe.status, 400);
  const patched = await c.send('PATCH', '/core/auth/credentials/reader', { privateKey: 'reader-pw-2' }, as(admin));
  assert.is(patched.status, 200);
  assert.not.ok(patched.text.includes('privateKeyHash'), patched.text);
  assert.is((await c.send('POST', '/core/authn/basic', {}, { authorization: basic('reader@localhost', 'reader-pw') })).status, 403);
  await login(c, 'reader@localhost', 'reader-pw-2');
  assert.is((await c.send('PATCH', '/core/auth/credentials/reader', { privateKey: 'reader-pw' }, as(admin))).status, 200);
  // Events would carry the hash: nobody but the system user watches credentials.
  assert.is((await c.send('GET', '/core/auth/credentials/subscriptions', undefined, as(admin))).status, 403);
});

t('session documents belong to the system user alone, admin included', async ({ h, admin }) => {
  const c = h.client;
  assert.is((await c.send('GET', '/core/authz/tokens', undefined, as(admin))).status, 200);
  assert.equal((await c.send<List>('GET', '/core/authz/tokens', undefined, as(admin))).body.documentLinks, []);
  assert.is(
    (await c.send('POST', '/core/authz/tokens', { userLink: '/core/authz/users/reader', documentExpirationTimeMicros: 1e18 }, as(admin)))
      .status,
    403,
  );
  const q = await c.send<Task>(
    'POST',
    '/core/query-tasks',
    {
      taskInfo: { isDirect: true },
      querySpec: { options: ['COUNT'], query: { term: { propertyName: 'documentKind', matchValue: 'krypton:authz:AuthTokenState' } } },
    },
    as(admin),
  );
  assert.is(q.body.results.documentCount, 0);
});

t('a factory watch delivers only what its subscriber may read, and ends with the session', async ({ h }) => {
  const c = h.client;
  const admin = await login(c, ADMIN, ADMIN_PASSWORD); // the suite's first one expired above
  const token = await login(c, 'reader@localhost', 'reader-pw');
  const stream = await openStream(`${h.host.uri}/core/examples/subscriptions/stream`, undefined, as(token));
  try {
    assert.is((await c.send('PATCH', '/core/examples/priv-1', { name: 'secret' }, as(admin))).status, 200);
    assert.is((await c.send('PATCH', '/core/examples/pub-2', { name: 'visible' }, as(admin))).status, 200);
    await waitFor('pub-2 update', () => stream.events.some((e) => (e.data as { name?: string } | undefined)?.name === 'visible'));
    assert.not.ok(
      stream.events.some((e) => JSON.stringify(e.data).includes('priv-1')),
      JSON.stringify(stream.events),
    );
    assert.is((await c.send('POST', '/core/authn/basic', { requestType: 'LOGOUT' }, as(token))).status, 200);
    assert.is((await c.send('PATCH', '/core/examples/pub-2', { name: 'after logout' }, as(admin))).status, 200);
    await stream.ended;
    assert.ok(
      stream.events.some((e) => e.event === 'error'),
      JSON.stringify(stream.events),
    );
    assert.not.ok(stream.events.some((e) => (e.data as { name?: string } | undefined)?.name === 'after logout'));
  } finally {
    await stream.close();
  }
  assert.is(
    (await c.send('GET', '/core/examples/priv-1/subscriptions', undefined, as(await login(c, 'reader@localhost', 'reader-pw')))).status,
    403,
  );
});

t('sessions expire with the clock, or end with LOGOUT', async ({ h, clock }) => {
  const c = h.client;
  const token = await login(c, 'reader@localhost', 'reader-pw');
  const short = await login(c, 'reader@localhost', 'reader-pw', { sessionExpirationSeconds: 60 });
  assert.is((await c.send('GET', '/core/examples/pub-1', undefined, as(token))).status, 200);
  assert.is((await c.send('GET', '/core/examples/pub-1', undefined, as(short))).status, 200);
  clock.advance(61_000_000);
  assert.is((await c.send('GET', '/core/examples/pub-1', undefined, as(short))).status, 403);
  assert.is((await c.send('GET', '/core/examples/pub-1', undefined, as(token))).status, 200);
  clock.advance(3_600_000_000);
  assert.is((await c.send('GET', '/core/examples/pub-1', undefined, as(token))).status, 403);

  const other = await login(c, 'reader@localhost', 'reader-pw');
  assert.is((await c.send('GET', '/core/examples/pub-1', undefined, as(other))).status, 200);
  const out = await c.send('POST', '/core/authn/basic', { requestType: 'LOGOUT' }, as(other));
  assert.is(out.status, 200);
  assert.match(String(out.headers['set-cookie']), /xenon-auth-cookie=; Path=\/; Max-Age=0/);
  assert.is((await c.send('GET', '/core/examples/pub-1', undefined, as(other))).status, 403);
  assert.is((await c.send('POST', '/core/authn/basic', { requestType: 'LOGOUT' })).status, 200);
  assert.is(
    (await c.send('POST', '/core/authn/basic', { sessionExpirationSeconds: 0 }, { authorization: basic(ADMIN, ADMIN_PASSWORD) })).status,
    400,
  );
});

t('tasks run under authorization: the owner calls itself as a member', async ({ h }) => {
  const c = h.client;
  const admin = await login(c, ADMIN, ADMIN_PASSWORD);
  const r = await c.send<{ taskInfo: { stage: string }; documentSelfLink: string }>(
    'POST',
    '/core/example-tasks',
    { taskInfo: { isDirect: true } },
    as(admin),
  );
  assert.is(r.status, 200, r.text);
  assert.is(r.body.taskInfo.stage, 'FINISHED');
  assert.equal((await c.send<List>('GET', '/core/examples', undefined, as(admin))).body.documentLinks, []);
});

t('the admin bootstrap writes nothing twice: a restart leaves its documents alone', async (ctx) => {
  const links = adminLinks(ADMIN);
  const versions = () => Object.values(links).map((l) => ctx.h.host.index.latest(l)?.documentVersion);
  const before = versions();
  assert.ok(before.every((v) => v !== undefined));
  ctx.h = await ctx.h.restart();
  await ctx.h.host.cluster.admin!.ready;
  assert.equal(versions(), before);
  assert.is(
    (await ctx.h.client.send('GET', '/core/management', undefined, as(await login(ctx.h.client, ADMIN, ADMIN_PASSWORD)))).status,
    200,
  );
});

t.run();
