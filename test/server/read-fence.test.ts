/**
 * The fence before a read or an update (server/synch/fencing.ts needsSynchExisting): an owner
 * holding no copy of a link asks its peers before it answers 404, since another host's view may
 * have created the link while this one trusted its ownership; with a copy, a read or an update
 * asks no more than a write does (needsSynch), and a create keeps that rule too.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { registerService } from '../../lib/service.js';
import { exampleService } from '../../lib/services/example.js';
import { DocumentIndex } from '../../index/views.js';
import type { Selectors } from '../../server/membership/selectors.js';
import { Fencing } from '../../server/synch/fencing.js';
import type { SynchDeps } from '../../server/synch/deps.js';

const svc = registerService(exampleService as never);

function fencing(opts: { peers: boolean; enabled?: boolean }) {
  const index = new DocumentIndex({ retentionFor: () => 10 });
  const d = {
    hostId: 'here',
    index,
    promises: { get: () => undefined },
    enabled: opts.enabled ?? true,
    selectors: { spec: () => ({}) } as unknown as Selectors,
  } as unknown as Pick<SynchDeps, 'hostId' | 'index' | 'promises' | 'enabled' | 'selectors'>;
  // The link never moved: the schedule trusts this host's ownership (schedule.ts linkPending false).
  const f = new Fencing(
    d,
    () => opts.peers,
    () => false,
    () => undefined,
  );
  return { f, index };
}

const held = (index: DocumentIndex, link: string) =>
  index.apply({
    seq: 1,
    link,
    action: 'POST',
    version: 0,
    epoch: 0,
    timeMicros: 1000,
    state: {
      documentSelfLink: link,
      documentKind: KINDS.example,
      documentVersion: 0,
      documentEpoch: 0,
      documentOwner: 'here',
      documentUpdateTimeMicros: 1000,
      documentUpdateAction: 'POST',
      documentExpirationTimeMicros: 0,
    },
  });

test('a link held nowhere here is synchronized before a read or an update, not before a create', () => {
  const { f, index } = fencing({ peers: true });
  const link = '/core/examples/absent';
  assert.ok(f.needsSynchExisting(svc, link), 'the 404 waits for the peers');
  assert.not.ok(f.needsSynch(svc, link), 'a create asks no more than before');
  held(index, link);
  assert.not.ok(f.needsSynchExisting(svc, link), 'a held copy keeps the per-link trust');
});

test('alone, or with synchronization off, a read of an absent link answers at once', () => {
  assert.not.ok(fencing({ peers: false }).f.needsSynchExisting(svc, '/core/examples/a'));
  assert.not.ok(fencing({ peers: true, enabled: false }).f.needsSynchExisting(svc, '/core/examples/a'));
});

test.run();
