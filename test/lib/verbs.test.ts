import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS, type ServiceDocument } from '../../lib/document.js';
import { KryptonError } from '../../lib/errors.js';
import { registerService } from '../../lib/service.js';
import { exampleService } from '../../lib/services/example.js';
import { childLinkFor, isValidDocumentId, planCreate, planUpdate } from '../../lib/verbs.js';

const svc = registerService(exampleService);
const ctx = (nowMicros: number) => ({ nowMicros, hostId: 'host-1' });
const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
  } catch (e) {
    return e instanceof KryptonError ? `${e.code}:${e.xenonErrorCode}:${e.message}` : String(e);
  }
  return undefined;
};

test('ids: Xenon character set, suffix forms, generated ids', () => {
  assert.ok(isValidDocumentId("a-b_c.d~e:f@g!$&'()*+,;="));
  assert.not.ok(isValidDocumentId('a/b'));
  assert.not.ok(isValidDocumentId(''));
  assert.is(childLinkFor('/core/examples', 'x', ctx(1)), '/core/examples/x');
  assert.is(childLinkFor('/core/examples', '/x', ctx(1)), '/core/examples/x');
  assert.is(childLinkFor('/core/examples', '/core/examples/x', ctx(1)), '/core/examples/x');
  assert.is(childLinkFor('/core/examples', undefined, ctx(0x10)), '/core/examples/c56a2f1f34efcd3d10');
});

test('create stamps the common fields in order and validates name', () => {
  const rec = planCreate(
    svc,
    '/core/examples/a',
    { name: 'a', counter: 3, unknownField: 1 },
    undefined,
    { forceIndexUpdate: false },
    ctx(100),
  );
  assert.equal(Object.keys(rec.state), [
    'keyValues',
    'counter',
    'name',
    'tags',
    'isFromMigration',
    'documentVersion',
    'documentEpoch',
    'documentKind',
    'documentSelfLink',
    'documentUpdateTimeMicros',
    'documentUpdateAction',
    'documentExpirationTimeMicros',
    'documentOwner',
  ]);
  assert.is(rec.state.documentKind, KINDS.example);
  assert.is(rec.version, 0);
  assert.is(rec.timeMicros, 100);
  assert.is(rec.action, 'POST');
  assert.match(
    code(() => planCreate(svc, '/core/examples/a', {}, undefined, { forceIndexUpdate: false }, ctx(1)))!,
    /INVALID_BODY:0:name is required/,
  );
  assert.is(rec.epoch, 0);
  // A link its replicas promised an epoch for, though nobody holds it, is created in that epoch.
  const fenced = planCreate(svc, '/core/examples/a', { name: 'a' }, undefined, { forceIndexUpdate: false, epochFloor: 4 }, ctx(100));
  assert.equal([fenced.epoch, fenced.state.documentEpoch, fenced.version], [4, 4, 0]);
});

test('create over live, deleted and expired states', () => {
  const live = planCreate(svc, '/core/examples/a', { name: 'a' }, undefined, { forceIndexUpdate: false }, ctx(1)).state;
  assert.match(
    code(() => planCreate(svc, '/core/examples/a', { name: 'b' }, live, { forceIndexUpdate: false }, ctx(2)))!,
    /ALREADY_EXISTS:-2147483645/,
  );
  const tomb = planUpdate(svc, 'DELETE', '/core/examples/a', live, undefined, ctx(3))!.state;
  assert.match(
    code(() => planCreate(svc, '/core/examples/a', { name: 'b' }, tomb, { forceIndexUpdate: false }, ctx(4)))!,
    /MARKED_DELETED:-2147483646:Service marked deleted/,
  );
  const forced = planCreate(svc, '/core/examples/a', { name: 'b' }, tomb, { forceIndexUpdate: true }, ctx(5));
  assert.is(forced.version, 2);
  assert.ok(forced.resetHistory);
  const higher = planCreate(svc, '/core/examples/a', { name: 'b', documentVersion: 9 }, tomb, { forceIndexUpdate: false }, ctx(6));
  assert.is(higher.version, 9);
  assert.not.ok(higher.resetHistory);
  const expiring = planCreate(
    svc,
    '/core/examples/e',
    { name: 'e', documentExpirationTimeMicros: 10 },
    undefined,
    { forceIndexUpdate: false },
    ctx(1),
  ).state;
  const again = planCreate(svc, '/core/examples/e', { name: 'e2' }, expiring, { forceIndexUpdate: false }, ctx(11));
  assert.is(again.version, 0);
  assert.ok(again.resetHistory);
});

test('updates: 404 on missing and deleted, DELETE no-op, version +1, epoch kept', () => {
  assert.match(code(() => planUpdate(svc, 'PATCH', '/core/examples/m', undefined, { name: 'x' }, ctx(1)))!, /NOT_FOUND:-2147483648/);
  assert.is(planUpdate(svc, 'DELETE', '/core/examples/m', undefined, undefined, ctx(1)), null);
  const s = {
    ...planCreate(svc, '/core/examples/a', { name: 'a' }, undefined, { forceIndexUpdate: false }, ctx(1)).state,
    documentEpoch: 4,
  } as ServiceDocument;
  const p = planUpdate(svc, 'PATCH', '/core/examples/a', s, { name: 'b' }, ctx(2))!;
  assert.is(p.version, 1);
  assert.is(p.epoch, 4);
  const tomb = planUpdate(svc, 'DELETE', '/core/examples/a', p.state, { documentExpirationTimeMicros: 99 }, ctx(3))!;
  assert.is(tomb.state.documentExpirationTimeMicros, 99);
  assert.is(tomb.state.name, 'b');
  assert.match(code(() => planUpdate(svc, 'PUT', '/core/examples/a', tomb.state, { name: 'c' }, ctx(4)))!, /NOT_FOUND:-2147483646/);
  assert.is(planUpdate(svc, 'DELETE', '/core/examples/a', tomb.state, undefined, ctx(5)), null);
});

test('schema refuses wrong types before any handler runs', () => {
  for (const bad of [{ name: 1 }, { counter: 'x' }, { counter: 1.5 }, { tags: [1] }, { keyValues: { a: 2 } }, [], 'x', null]) {
    assert.throws(
      () => svc.parseBody(bad),
      (e: unknown) => e instanceof KryptonError && e.code === 'INVALID_BODY',
      JSON.stringify(bad),
    );
  }
  assert.equal(svc.parseBody({ name: null, keyValues: { a: null } }), { name: null, keyValues: { a: null } });
});

test.run();
