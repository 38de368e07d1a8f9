import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KryptonError } from '../../lib/errors.js';
import { registerService } from '../../lib/service.js';
import { credentialsService } from '../../lib/services/authz-credentials.js';
import { roleService } from '../../lib/services/authz-roles.js';
import { tokenService } from '../../lib/services/authz-tokens.js';
import { userService } from '../../lib/services/authz-users.js';
import { planCreate, planUpdate } from '../../lib/verbs.js';

const ctx = { nowMicros: 1_000, hostId: 'h1' };
const opts = { forceIndexUpdate: false };
const refusal = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof KryptonError ? `${e.code}: ${e.message}` : String(e);
  }
  return undefined;
};
const HASH = `scrypt$16384$8$1$${Buffer.alloc(16, 1).toString('base64')}$${Buffer.alloc(32, 2).toString('base64')}`;

test('users need a plausible email', () => {
  const svc = registerService(userService);
  const make = (body: Record<string, unknown>) => planCreate(svc, '/core/authz/users/u', svc.parseBody(body), undefined, opts, ctx);
  assert.is(make({ email: 'a@b' }).state.email, 'a@b');
  assert.match(refusal(() => make({}))!, /email is required/);
  assert.match(refusal(() => make({ email: 'nope' }))!, /not a valid email/);
});

test('roles: users, prefixes and verbs are required; DENY and Xenon groups are refused, not ignored', () => {
  const svc = registerService(roleService);
  const make = (body: Record<string, unknown>) => planCreate(svc, '/core/authz/roles/r', svc.parseBody(body), undefined, opts, ctx);
  const ok = { userLinks: ['/core/authz/users/u'], pathPrefixes: ['/core/examples'], verbs: ['PATCH', 'GET'], policy: 'ALLOW' };
  const s = make(ok).state;
  assert.equal(s.verbs, ['GET', 'PATCH']);
  assert.is(s.priority, 0);
  assert.match(refusal(() => make({ ...ok, policy: 'DENY' }))!, /DENY policy is not supported/);
  assert.match(refusal(() => make({ ...ok, policy: undefined }))!, /policy is required/);
  assert.match(refusal(() => make({ ...ok, verbs: ['GET', 'FLY'] }))!, /unknown verb 'FLY'/);
  assert.match(refusal(() => make({ ...ok, userLinks: [] }))!, /userLinks is required/);
  assert.match(refusal(() => make({ ...ok, pathPrefixes: ['core'] }))!, /must start with '\/'/);
  assert.match(refusal(() => make({ ...ok, resourceGroupLink: '/core/authz/resource-groups/x' }))!, /not supported/);
  // POST over an existing role replaces it, as Xenon's role factory does.
  const again = planCreate(svc, '/core/authz/roles/r', svc.parseBody({ ...ok, verbs: ['GET'] }), s, opts, { ...ctx, nowMicros: 2_000 });
  assert.is(again.action, 'PUT');
  assert.equal(again.state.verbs, ['GET']);
});

test('credentials hold a hash, never a password', () => {
  const svc = registerService(credentialsService);
  const make = (body: Record<string, unknown>) => planCreate(svc, '/core/auth/credentials/c', svc.parseBody(body), undefined, opts, ctx);
  const s = make({ userEmail: 'a@b', privateKeyHash: HASH }).state;
  assert.is(s.privateKeyHash, HASH);
  assert.is(s.type, 'Password');
  assert.match(refusal(() => make({ userEmail: 'a@b', privateKey: 'secret' }))!, /unhashed/);
  assert.match(refusal(() => make({ userEmail: 'a@b' }))!, /privateKey is required/);
  assert.match(refusal(() => make({ userEmail: 'a@b', privateKeyHash: 'md5$abc' }))!, /not a scrypt hash/);
  const patched = planUpdate(svc, 'PATCH', '/core/auth/credentials/c', s, svc.parseBody({ type: 'Password' }), {
    ...ctx,
    nowMicros: 2_000,
  });
  assert.is(patched!.state.privateKeyHash, HASH);
});

test('a session always ends, and keeps its end through a DELETE', () => {
  const svc = registerService(tokenService);
  const link = '/core/authz/tokens/abc';
  assert.match(
    refusal(() => planCreate(svc, link, svc.parseBody({ userLink: '/core/authz/users/u' }), undefined, opts, ctx))!,
    /always ends/,
  );
  const s = planCreate(
    svc,
    link,
    svc.parseBody({ userLink: '/core/authz/users/u', documentExpirationTimeMicros: 5_000 }),
    undefined,
    opts,
    ctx,
  ).state;
  assert.is(s.documentExpirationTimeMicros, 5_000);
  const del = planUpdate(svc, 'DELETE', link, s, undefined, { ...ctx, nowMicros: 2_000 });
  assert.is(del!.state.documentExpirationTimeMicros, 5_000);
  assert.is(del!.action, 'DELETE');
});

test.run();
