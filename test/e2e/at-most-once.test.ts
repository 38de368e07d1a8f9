/**
 * At most once with real processes, the way the bug was found: 3 hosts, quorum 2; the owner of
 * /core/examples/dup is SIGSTOPped while a PUT (then a StrictUpdateRequest PATCH) goes through
 * another host, which sends it again after each hop timeout and, once the group has marked the
 * owner UNAVAILABLE, to the next owner. The owner is let go only after the entry host has sent
 * the request twice. The PUT is answered 200 and is one write in the history a quorum agrees on;
 * the CAS is one write if answered 200 and none if answered a failure.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { Client } from '../support/http.js';
import { tempDir } from '../support/hosts.js';
import { startHostProcess, type HostProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

interface Doc {
  documentVersion: number;
  name: string;
  documentUpdateAction: string;
}

const PORTS = [8000, 8001, 8002];
const peers = `--peerNodes=${PORTS.map((p) => `http://127.0.0.1:${p}`).join(',')}`;
const local = { pragma: 'xn-no-fwd' };

async function ready(clients: Client[]): Promise<boolean> {
  for (const c of clients) {
    const g = await c.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default');
    if (Object.values(g.body?.nodes ?? {}).filter((n) => n.status === 'AVAILABLE').length < PORTS.length) return false;
    if ((await c.get('/core/node-groups/default/available')).status !== 200) return false;
  }
  return true;
}

interface Held {
  name: string;
  epoch: number;
}

/**
 * The history a quorum agrees on: per version, the name and epoch at least two hosts hold (a
 * stopped owner's fenced writes are held by it alone and are not part of it).
 */
async function agreedHistory(clients: Client[], link: string, latest: number): Promise<(Held | undefined)[]> {
  const out: (Held | undefined)[] = [];
  for (let v = 0; v <= latest; v++) {
    const held = await Promise.all(
      clients.map(async (c) => {
        const r = await c.send<{ name: string; documentEpoch: number }>('GET', `${link}?documentVersion=${v}`, undefined, local);
        return r.status === 200 ? `${r.body.name}@${r.body.documentEpoch}` : undefined;
      }),
    );
    const agreed = held.find((h, i) => h !== undefined && held.indexOf(h) !== i);
    out.push(agreed === undefined ? undefined : { name: agreed.split('@')[0]!, epoch: Number(agreed.split('@')[1]) });
  }
  return out;
}

/** The versions that are writes of `name`: not a takeover's copy (the same state again, in a higher epoch). */
function writesOf(history: (Held | undefined)[], name: string): number[] {
  return history.flatMap((h, v) => {
    const prev = history[v - 1];
    if (h?.name !== name) return [];
    return prev !== undefined && prev.name === h.name && prev.epoch < h.epoch ? [] : [v];
  });
}

/** Sends `send()` through `entry` while `owner` is stopped; lets it go once `entry` forwarded it twice. */
async function whileStopped<T>(owner: HostProcess, entry: Client, send: () => Promise<T>): Promise<T> {
  const forwarded = async () => (await entry.get<{ forwardStats: { requests: number } }>('/core/management')).body.forwardStats.requests;
  const before = await forwarded();
  owner.child.kill('SIGSTOP');
  try {
    const answer = send();
    await waitFor('the entry host sent the request again', async () => (await forwarded()) >= before + 2, 40_000);
    return await answer;
  } finally {
    owner.child.kill('SIGCONT');
  }
}

test('a PUT and a CAS through a non-owner while the owner is SIGSTOPped each take effect at most once, and the PUT is answered 200', async () => {
  const dir = await tempDir();
  const procs: HostProcess[] = [];
  const clients: Client[] = [];
  try {
    for (const port of PORTS) {
      procs.push(await startHostProcess([`--port=${port}`, `--sandbox=${dir.path}`, `--id=amo${port}`, peers, '--membershipQuorum=2']));
      clients.push(new Client(`http://127.0.0.1:${port}`));
    }
    await waitFor('group', () => ready(clients), 20_000);
    const link = '/core/examples/dup';
    assert.is((await clients[0]!.post('/core/examples', { documentSelfLink: 'dup', name: 'before' })).status, 200);
    const sel = await clients[0]!.post<{ ownerNodeId: string }>('/core/node-selectors/default', { key: link });
    const o = PORTS.findIndex((p) => `amo${p}` === sel.body.ownerNodeId);
    const entry = clients[(o + 1) % 3]!;
    await waitFor('every host holds version 0', async () => {
      for (const c of clients) if ((await c.send<Doc>('GET', link, undefined, local)).body.documentVersion !== 0) return false;
      return true;
    });

    // Forwarded PUT: the hop to the stopped owner times out and is sent again (each try a new
    // version before at-most-once: 200 with documentVersion 3 and versions 1, 2, 3 all "once").
    const put = await whileStopped(procs[o]!, entry, () => entry.put<Doc>(link, { name: 'once' }));
    assert.is(put.status, 200, put.text);
    assert.is(put.body.name, 'once');
    await waitFor('the group whole again', () => ready(clients), 30_000);
    const cur = await entry.get<Doc>(link);
    const cas = await whileStopped(procs[o]!, entry, () =>
      entry.patch<Doc>(link, { kind: KINDS.strictUpdateRequest, name: 'cas', documentVersion: cur.body.documentVersion }),
    );
    await waitFor('the group whole again', () => ready(clients), 30_000);

    // Takeovers while the owner was stopped copy the state to new versions (a new epoch each) and
    // may leave a CAS that read the version before one of them legitimately failed. What must
    // hold: the PUT is one write, the one the client was told of; the CAS is one write if the
    // client heard 200, none if it heard a failure.
    const latest = await waitFor('every host agrees on the latest version', async () => {
      const vs = await Promise.all(clients.map(async (c) => (await c.send<Doc>('GET', link, undefined, local)).body.documentVersion));
      return vs.every((v) => v === vs[0]) ? vs[0] : undefined;
    });
    const history = await agreedHistory(clients, link, latest);
    const seen = JSON.stringify(history);
    assert.equal(writesOf(history, 'once'), [put.body.documentVersion], `the PUT once, at the version told: ${seen}`);
    if (cas.status === 200) {
      assert.is(cas.body.name, 'cas');
      assert.equal(writesOf(history, 'cas'), [cas.body.documentVersion], `the CAS once, at the version told: ${seen}`);
    } else {
      assert.equal(writesOf(history, 'cas'), [], `a CAS reported failed (${cas.status} ${cas.text}) never took effect: ${seen}`);
    }
  } finally {
    for (const c of clients) await c.close();
    for (const p of procs) {
      p.child.kill('SIGCONT');
      await p.kill('SIGKILL');
    }
    await dir.remove();
  }
});

test.run();
