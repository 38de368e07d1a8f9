/**
 * A forward delivered late is refused, not applied (server/routing/routing.ts checkForward). An
 * entry host that gave up on a hop to an owner cut off by a partition retried elsewhere and
 * answered its client (404, the document not yet created there); the kernel still held the first
 * hop's bytes and delivered them when the partition healed, and the owner applied the add some
 * seconds after its client was told it failed (torture partition seed 2002: `unexpectedPresent`,
 * the add last in the final set). A forwarded write names the version of the owner's membership
 * entry it was chosen by; an owner whose entry moved past it answers STALE_VIEW (503) and logs
 * nothing. The same forward under the owner's current entry is applied.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KRYPTON_ERROR_CODES } from '../../lib/errors.js';
import type { ForwardItem } from '../../server/routing/forwarder.js';
import { forwardTo } from '../support/forward.js';
import { closeAll, startGroup, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

interface Doc {
  documentVersion: number;
  name: string;
  errorCode?: number;
}

const forward = (h: TestHost, item: ForwardItem) => forwardTo<Doc>(h, [item]);

async function ownEntryVersion(h: TestHost): Promise<number> {
  const g = await h.client.get<{ nodes: Record<string, { documentVersion: number }> }>('/core/node-groups/default');
  return g.body.nodes[h.host.id]!.documentVersion;
}

test('a forwarded write chosen under an older entry of its owner is refused and leaves no version; under the current one it applies', async () => {
  let hosts: TestHost[] | undefined;
  try {
    hosts = await startGroup(3, (i) => ({ id: `sf-${i + 1}`, membershipQuorum: 2 }));
    const link = '/core/examples/stale-forward';
    assert.is((await hosts[0]!.client.post('/core/examples', { documentSelfLink: link, name: 'v0' })).status, 200);
    const sel = await hosts[0]!.client.post<{ ownerNodeId: string }>('/core/node-selectors/default', { key: link });
    const owner = hosts.find((h) => h.host.id === sel.body.ownerNodeId)!;
    // Acknowledged by a quorum of two: the third host may still be receiving it.
    await waitFor('every host holds version 0', async () => {
      for (const h of hosts!)
        if ((await h.client.send<Doc>('GET', link, undefined, { pragma: 'xn-no-fwd' })).body.documentVersion !== 0) return false;
      return true;
    });
    const entry = await ownEntryVersion(owner);
    assert.ok(entry >= 1, `the owner's entry moved at least once while it joined (at ${entry})`);
    const patch = (name: string, ownerEntry: number): ForwardItem => ({
      method: 'PATCH',
      url: link,
      pragma: 'xn-fwd',
      xenonHeaders: {},
      body: JSON.stringify({ name }),
      requestId: `sf-${name}`,
      ownerEntry,
    });

    const [status, body] = await forward(owner, patch('late', entry - 1));
    assert.is(status, 503, JSON.stringify(body));
    assert.is(body.errorCode, KRYPTON_ERROR_CODES.STALE_VIEW);
    for (const h of hosts) {
      const r = await h.client.send<Doc>('GET', link, undefined, { pragma: 'xn-no-fwd' });
      assert.equal([r.body.documentVersion, r.body.name], [0, 'v0'], `${h.host.id} holds no late write`);
    }

    const [ok, doc] = await forward(owner, patch('current', entry));
    assert.is(ok, 200, JSON.stringify(doc));
    assert.equal([doc.documentVersion, doc.name], [1, 'current']);
    // A client's write through a non-owner carries the entry host's view of the owner: applied once.
    const other = hosts.find((h) => h !== owner)!;
    const r = await other.client.patch<Doc>(link, { name: 'through-entry' });
    assert.is(r.status, 200, r.text);
    assert.is(r.body.documentVersion, 2);
    await waitFor('every host holds version 2', async () => {
      for (const h of hosts!)
        if ((await h.client.send<Doc>('GET', link, undefined, { pragma: 'xn-no-fwd' })).body.documentVersion !== 2) return false;
      return true;
    });
  } finally {
    await closeAll(hosts);
  }
});

test.run();
