/**
 * The pure parts of user services: a definition's fingerprint changes with its shape and its
 * handlers' code and nothing else; a member whose services differ is named with the reason;
 * a handler's effects ride on the planned record (never in its state); a singleton's first
 * update starts from its initial state.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { JsonObject } from '../../lib/document.js';
import { groupServiceMismatch, serviceFingerprint, serviceMismatch, serviceProperties } from '../../lib/service-fingerprint.js';
import { defineService, Type, withEffects } from '../../lib/service-api.js';
import { registerService } from '../../lib/service.js';
import { planCreate, planUpdate } from '../../lib/verbs.js';

const base = defineService<JsonObject>({
  factoryLink: '/app/things',
  kind: 'app:Thing',
  options: ['PERSISTENCE', 'REPLICATION', 'OWNER_SELECTION'],
  nodeSelector: '/core/node-selectors/default',
  versionRetention: 10,
  bodySchema: Type.Object({ n: Type.Optional(Type.Integer()), documentSelfLink: Type.Optional(Type.String()) }),
  create: (body) => ({ n: body.n ?? 0 }),
  put: (_c, body) => ({ n: body.n ?? 0 }),
  patch: (c, body) =>
    withEffects<JsonObject>(
      { n: Number(c.n) + Number(body.n ?? 1) },
      { type: 'request', method: 'POST', link: '/app/log', body: { at: 1 } },
    ),
});

const ctx = { nowMicros: 1_000_000, hostId: 'h1' };

test('fingerprints follow the definition and its handlers', () => {
  assert.is(serviceFingerprint(base), serviceFingerprint({ ...base }));
  assert.is.not(serviceFingerprint(base), serviceFingerprint({ ...base, versionRetention: 11 }));
  assert.is.not(serviceFingerprint(base), serviceFingerprint({ ...base, patch: (c) => ({ n: c.n ?? 0 }) }));
  assert.equal(Object.keys(serviceProperties([base])), ['krypton.service:/app/things']);
});

test('a mismatch names the host, the service and why', () => {
  const mine = serviceProperties([base]);
  const same = { id: 'b', customProperties: { ...mine, other: 'x' } };
  assert.is(serviceMismatch(mine, same), undefined);
  assert.match(serviceMismatch(mine, { id: 'b' })!, /host b does not run the service \/app\/things/);
  assert.match(
    serviceMismatch({}, { id: 'b', customProperties: mine })!,
    /host b runs the service \/app\/things, which this host does not/,
  );
  const changed = serviceProperties([{ ...base, versionRetention: 11 }]);
  assert.match(serviceMismatch(mine, { id: 'b', customProperties: changed })!, /defines the service \/app\/things differently/);
  assert.is(groupServiceMismatch(mine, 'a', [{ id: 'a' }, same]), undefined, 'its own entry is not compared');
  assert.is(serviceMismatch(undefined, { id: 'b' }), undefined, 'hosts without user services agree');
});

test("effects ride on the record, not in the state; a retry's plan is the caller's to skip", () => {
  const svc = registerService(base);
  const created = planCreate(svc, '/app/things/x', { n: 1 }, undefined, { forceIndexUpdate: false }, ctx);
  assert.is(created.effects, undefined, 'a handler without effects adds none');
  const patched = planUpdate(svc, 'PATCH', '/app/things/x', created.state, { n: 2 }, ctx)!;
  assert.is(patched.state.n, 3);
  assert.equal(patched.effects, [{ type: 'request', method: 'POST', link: '/app/log', body: { at: 1 } }]);
  assert.not.ok('effects' in patched.state, 'never in the logged state');
});

test('a singleton holds one document, and its first update starts from the initial state', () => {
  const svc = registerService({
    ...base,
    patch: (c: JsonObject, b: JsonObject) => ({ n: Number(c.n) + Number(b.n ?? 1) }),
    singleton: { id: 'one', initial: { n: 40 } },
  });
  assert.throws(() => planCreate(svc, '/app/things/two', { n: 1 }, undefined, { forceIndexUpdate: false }, ctx), /singleton/);
  const first = planUpdate(svc, 'PATCH', '/app/things/one', undefined, { n: 2 }, ctx)!;
  assert.is(first.version, 0);
  assert.is(first.state.n, 42);
  assert.is(planUpdate(svc, 'DELETE', '/app/things/one', undefined, undefined, ctx), null, 'a DELETE of nothing stays a no-op');
  assert.throws(() => planUpdate(registerService(base), 'PATCH', '/app/things/one', undefined, { n: 2 }, ctx), /not found/i);
});

test.run();
