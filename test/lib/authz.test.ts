import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  allows,
  authzPath,
  cookieValue,
  formatPasswordHash,
  grantsFor,
  isTokenShaped,
  parseBasicAuthorization,
  parsePasswordHash,
  pathCovers,
  ruleOf,
  verbOf,
  watchedLinkOf,
  type RoleRule,
} from '../../lib/authz.js';
import { KryptonError } from '../../lib/errors.js';

test('prefixes cover whole segments; a trailing * covers text; / covers everything', () => {
  assert.ok(pathCovers('/core/examples', '/core/examples'));
  assert.ok(pathCovers('/core/examples', '/core/examples/one'));
  assert.ok(pathCovers('/core/examples/', '/core/examples/one'));
  assert.not.ok(pathCovers('/core/examples', '/core/examples-3x'));
  assert.not.ok(pathCovers('/core/examples', '/core/example'));
  assert.not.ok(pathCovers('/core/examples/one', '/core/examples/onetwo'));
  assert.ok(pathCovers('/core/examples/team-a-*', '/core/examples/team-a-1'));
  assert.not.ok(pathCovers('/core/examples/team-a-*', '/core/examples/team-b-1'));
  assert.ok(pathCovers('/', '/core/anything/at/all'));
  assert.ok(pathCovers('/core/authz/users', '/core/authz/users/u1'));
  assert.not.ok(pathCovers('/core/authz/users', '/core/authz/guest-user'));
});

const rules: RoleRule[] = [
  { userLinks: ['/core/authz/users/reader'], pathPrefixes: ['/core/examples'], verbs: ['GET'] },
  { userLinks: ['/core/authz/users/writer'], pathPrefixes: ['/core/examples/w-*'], verbs: ['GET', 'PATCH'] },
  { userLinks: ['/core/authz/users'], pathPrefixes: ['/core/management'], verbs: ['GET'] },
  { userLinks: ['/core/authz/guest-user'], pathPrefixes: ['/public'], verbs: ['GET'] },
];

test('roles add up per user; nothing is allowed without one', () => {
  const reader = grantsFor(rules, '/core/authz/users/reader');
  assert.is(reader.length, 2); // its own role and the one for every user
  assert.ok(allows(reader, 'GET', '/core/examples/x'));
  assert.not.ok(allows(reader, 'PATCH', '/core/examples/x'));
  assert.ok(allows(reader, 'GET', '/core/management'));
  assert.not.ok(allows(reader, 'GET', '/public/x'));
  const writer = grantsFor(rules, '/core/authz/users/writer');
  assert.ok(allows(writer, 'PATCH', '/core/examples/w-1'));
  assert.not.ok(allows(writer, 'PATCH', '/core/examples/x'));
  assert.not.ok(allows(writer, 'GET', '/core/examples'));
  const guest = grantsFor(rules, '/core/authz/guest-user');
  assert.is(guest.length, 1);
  assert.ok(allows(guest, 'GET', '/public/x'));
  assert.not.ok(allows(grantsFor(rules, '/core/authz/users/nobody'), 'GET', '/core/examples'));
  assert.not.ok(allows([], 'GET', '/'));
});

test('stored roles are read defensively: only ALLOW roles with users, paths and known verbs count', () => {
  assert.equal(ruleOf({ policy: 'ALLOW', userLinks: ['/u'], pathPrefixes: ['/p'], verbs: ['GET', 'FLY'] }), {
    userLinks: ['/u'],
    pathPrefixes: ['/p'],
    verbs: ['GET'],
  });
  assert.is(ruleOf({ policy: 'DENY', userLinks: ['/u'], pathPrefixes: ['/p'], verbs: ['GET'] }), undefined);
  assert.is(ruleOf({ policy: 'ALLOW', userLinks: [], pathPrefixes: ['/p'], verbs: ['GET'] }), undefined);
  assert.is(ruleOf({ policy: 'ALLOW', userLinks: ['/u'], pathPrefixes: '/p', verbs: ['GET'] }), undefined);
});

test('verbs: HEAD reads like GET; unknown methods have no verb', () => {
  assert.is(verbOf('head'), 'GET');
  assert.is(verbOf('PATCH'), 'PATCH');
  assert.is(verbOf('TRACE'), undefined);
});

test('authorization paths are decoded and may not hide one path behind another', () => {
  assert.is(authzPath('/core/node-groups/def%61ult'), '/core/node-groups/default');
  assert.is(authzPath('/core/examples/'), '/core/examples');
  assert.is(authzPath('/'), '/');
  for (const bad of ['/core/examples/../authz/tokens', '/core/./examples', '/core//examples', '/core/examples%2Fx', '/core/%E0%A4%A']) {
    assert.throws(
      () => authzPath(bad),
      (e: unknown) => e instanceof KryptonError && e.code === 'INVALID_ARGUMENT',
      bad,
    );
  }
});

test('a watch reads its document', () => {
  assert.is(watchedLinkOf('/core/examples/one/subscriptions'), '/core/examples/one');
  assert.is(watchedLinkOf('/core/examples/subscriptions/stream'), '/core/examples');
  assert.is(watchedLinkOf('/core/examples/one'), undefined);
  assert.is(watchedLinkOf('/subscriptions'), undefined);
});

test('Basic credentials the way Xenon reads them', () => {
  const b = (s: string) => `Basic ${Buffer.from(s).toString('base64')}`;
  assert.equal(parseBasicAuthorization(undefined), { kind: 'missing' });
  assert.equal(parseBasicAuthorization(b('admin@localhost:change:me')), { kind: 'ok', user: 'admin@localhost', password: 'change:me' });
  assert.equal(parseBasicAuthorization(`basic ${Buffer.from('a@b:').toString('base64')}`), { kind: 'ok', user: 'a@b', password: '' });
  assert.equal(parseBasicAuthorization('Bearer abc'), { kind: 'malformed' });
  assert.equal(parseBasicAuthorization('Basic !!!'), { kind: 'malformed' });
  assert.equal(parseBasicAuthorization(b('no-colon')), { kind: 'malformed' });
  assert.equal(parseBasicAuthorization(b(':nouser')), { kind: 'malformed' });
});

test('cookies and token shape', () => {
  assert.is(cookieValue('a=1; xenon-auth-cookie=tok; b=2', 'xenon-auth-cookie'), 'tok');
  assert.is(cookieValue('xenon-auth-cookie=', 'xenon-auth-cookie'), undefined);
  assert.is(cookieValue(undefined, 'xenon-auth-cookie'), undefined);
  assert.ok(isTokenShaped(Buffer.alloc(32, 7).toString('base64url')));
  assert.not.ok(isTokenShaped('short'));
  assert.not.ok(isTokenShaped(`${Buffer.alloc(32, 7).toString('base64url').slice(0, 42)}=`));
});

test('password hashes: the stored form round-trips; costly or malformed ones are refused', () => {
  const h = { N: 16384, r: 8, p: 1, salt: Buffer.alloc(16, 1), key: Buffer.alloc(32, 2) };
  const s = formatPasswordHash(h);
  assert.equal(parsePasswordHash(s, 64 * 1024 * 1024), h);
  assert.is(parsePasswordHash(s, 1024 * 1024), undefined); // 16 MiB of memory is over this bound
  assert.is(parsePasswordHash(s.replace('16384', '16383'), 1 << 30), undefined); // N not a power of two
  assert.is(parsePasswordHash('plain text', 1 << 30), undefined);
  assert.is(parsePasswordHash(42, 1 << 30), undefined);
});

test.run();
