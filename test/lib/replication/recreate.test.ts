/**
 * How the records lib/verbs.ts stamps for a create meet the replica rule once the link has a
 * history: a forced re-create over a tombstone must sort after the tombstone on every replica,
 * including after ownership moved (epoch > 0). Scripted on the simulated hosts with the
 * tombstone's epoch kept (what replication needs) and with planCreate's epoch 0.
 */

import { test } from 'uvu';
import * as assert from 'uvu/assert';
import type { ServiceDocument } from '../../../lib/document.js';
import { selectNodes } from '../../../lib/hash.js';
import { registerService } from '../../../lib/service.js';
import { exampleService } from '../../../lib/services/example.js';
import { planCreate, planUpdate } from '../../../lib/verbs.js';
import { ReplicationSim, replicaDecision } from '../../support/sim-replication.js';

const svc = registerService(exampleService);
const ctx = (nowMicros: number) => ({ nowMicros, hostId: 'h1' });
const link = '/core/examples/a';

/** A tombstone of `link` at `epoch` (an owner that took the link over, then deleted it). */
function tombstoneAt(epoch: number): ServiceDocument {
  const live = {
    ...planCreate(svc, link, { name: 'a' }, undefined, { forceIndexUpdate: false }, ctx(1)).state,
    documentEpoch: epoch,
  } as ServiceDocument;
  return planUpdate(svc, 'DELETE', link, live, undefined, ctx(2))!.state;
}

test('re-create over an epoch-0 tombstone: the replicas apply it', () => {
  const tomb = tombstoneAt(0);
  const rec = planCreate(svc, link, { name: 'b' }, tomb, { forceIndexUpdate: true }, ctx(3));
  assert.is(rec.version, tomb.documentVersion + 1);
  assert.is(replicaDecision({ epoch: tomb.documentEpoch ?? 0, version: tomb.documentVersion }, rec), 'apply');
});

test('simulated: delete and re-create after a takeover keep replicating (tombstone epoch kept)', () => {
  const sim = new ReplicationSim({ hosts: 3, recreateEpoch: 'held' });
  const l = '/l/0';
  const owner = selectNodes(
    l,
    sim.ids.map((id) => ({ id, eligible: true })),
  )[0]!;
  sim.seed(l, 'v0');
  sim.crash(owner); // the successor takes over at epoch 1
  const survivor = sim.ids.find((id) => id !== owner)!;
  sim.write(survivor, l, 'delete');
  sim.drain();
  const again = sim.write(survivor, l, 'put', { value: 'again' });
  sim.drain();
  assert.equal([again.action, again.outcome, again.state?.epoch], ['POST', 'acked', 1]);
  sim.settle();
  assert.equal(sim.checkAll(), []);
});

// lib/verbs.ts planCreate stamps epoch 0 on every create, forced re-creates over a tombstone
// included (stamp(..., epoch: 0)). Once the link was taken over (tombstone at epoch >= 1), the
// owner's own index goes back from epoch 1 to 0 and every replica refuses the record (409
// "Expected epoch: 1, in update: 0"), so the re-create fails and the owner alone holds it. The
// same holds for a re-create with a higher documentVersion. It should keep the tombstone's epoch.
test('a forced re-create over a tombstone keeps its epoch (was a bug in verbs.ts)', () => {
  const tomb = tombstoneAt(2);
  const rec = planCreate(svc, link, { name: 'b' }, tomb, { forceIndexUpdate: true }, ctx(3));
  assert.is(rec.epoch, 2);
  assert.is(replicaDecision({ epoch: 2, version: tomb.documentVersion }, rec), 'apply');
  const higher = planCreate(svc, link, { name: 'b', documentVersion: 9 }, tomb, { forceIndexUpdate: false }, ctx(3));
  assert.is(higher.epoch, 2);
});

// Fixed: planCreate continues the held epoch ('held', what lib/verbs.ts now does). With 'zero'
// (the old behaviour) every replica refused the re-create.
test('re-create after a takeover is accepted by the replicas (was: refused by every replica)', () => {
  const sim = new ReplicationSim({ hosts: 3, recreateEpoch: 'held' });
  const l = '/l/0';
  const owner = selectNodes(
    l,
    sim.ids.map((id) => ({ id, eligible: true })),
  )[0]!;
  sim.seed(l, 'v0');
  sim.crash(owner);
  const survivor = sim.ids.find((id) => id !== owner)!;
  sim.write(survivor, l, 'delete');
  sim.drain();
  const again = sim.write(survivor, l, 'put', { value: 'again' });
  sim.drain();
  assert.is(again.outcome, 'acked', again.message);
  assert.equal(sim.checkLogs(), []);
});

test.run();
