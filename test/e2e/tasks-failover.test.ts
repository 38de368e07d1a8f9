/**
 * High availability with real processes: a slow task's owner is SIGKILLed in the middle of a
 * stage; another host takes the task over, runs the interrupted step again from the last durable
 * one, and the task reaches FINISHED exactly once.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Client } from '../support/http.js';
import { tempDir } from '../support/hosts.js';
import { startHostProcess, type HostProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const PORTS = [8000, 8001, 8002];
const PEERS = `--peerNodes=${PORTS.map((p) => `http://127.0.0.1:${p}`).join(',')}`;

interface SlowTask {
  taskInfo: { stage: string };
  step: number;
  steps: number;
  ranOn: string[];
  documentSelfLink: string;
  documentOwner: string;
  documentVersion: number;
}

test('a slow task whose owner is SIGKILLed mid-stage finishes once on another host', async () => {
  const dir = await tempDir();
  const procs = new Map<string, HostProcess>();
  const clients = new Map<string, Client>();
  try {
    for (const port of PORTS) {
      const id = `host${port}`;
      procs.set(id, await startHostProcess([`--port=${port}`, `--sandbox=${dir.path}`, `--id=${id}`, PEERS]));
      clients.set(id, new Client(`http://127.0.0.1:${port}`));
    }
    await waitFor(
      'group available everywhere',
      async () => {
        for (const c of clients.values()) if ((await c.get('/core/node-groups/default/available')).status !== 200) return false;
        return true;
      },
      20_000,
    );

    const post = await clients.get('host8000')!.post<SlowTask>('/core/slow-tasks', { steps: 4, stepMillis: 1500 });
    assert.is(post.status, 202);
    const link = post.body.documentSelfLink;
    const owner = post.body.documentOwner;
    const survivors = [...clients.keys()].filter((id) => id !== owner);
    const watcher = clients.get(survivors[0]!)!;
    // Kill the owner once step 1 is durable, i.e. while it works on step 2.
    await waitFor(
      'step 1 replicated',
      async () => ((await watcher.send<SlowTask>('GET', link, undefined, { pragma: 'xn-no-fwd' })).body.step ?? 0) >= 1,
      15_000,
    );
    await procs.get(owner)!.kill('SIGKILL');

    const done = await waitFor(
      'FINISHED on a survivor',
      async () => {
        const r = await watcher.get<SlowTask>(link);
        return r.status === 200 && r.body.taskInfo?.stage === 'FINISHED' ? r.body : undefined;
      },
      45_000,
    );
    assert.is(done.step, 4);
    assert.ok(survivors.includes(done.documentOwner), `finished on ${done.documentOwner}`);
    assert.is(done.ranOn.length, 4);
    assert.is(done.ranOn[0], owner, 'step 1 ran on the first owner');
    assert.is(done.ranOn[3], done.documentOwner, 'the last step ran on the new owner');

    // FINISHED was written once: exactly one retained version carries it.
    const finishedVersions: number[] = [];
    for (let v = 0; v <= done.documentVersion; v++) {
      const r = await watcher.send<SlowTask>('GET', `${link}?documentVersion=${v}`, undefined, { pragma: 'xn-no-fwd' });
      if (r.status === 200 && r.body.taskInfo.stage === 'FINISHED') finishedVersions.push(v);
    }
    assert.equal(finishedVersions, [done.documentVersion]);
  } finally {
    for (const c of clients.values()) await c.close();
    for (const p of procs.values()) await p.kill('SIGKILL');
    await dir.remove();
  }
});

test.run();
