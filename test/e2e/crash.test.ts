/**
 * Real processes: a host is SIGKILLed in the middle of a stream of concurrent writes, restarted on
 * the same sandbox, and must hold every write it acknowledged with the content it acknowledged.
 * Also the command's own contract: exit codes, graceful stops, and a damaged log.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import fs from 'node:fs/promises';
import path from 'node:path';
import { Client } from '../support/http.js';
import { tempDir } from '../support/hosts.js';
import { runKrypton, startHostProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

interface Doc {
  documentVersion: number;
  name: string;
  counter: number;
  keyValues: Record<string, string>;
}

/**
 * 16 writers create and update documents until `ready` says so, then the host is SIGKILLed,
 * restarted with the same flags, and must hold every acknowledged write as it was acknowledged.
 */
async function sigkillLosesNothing(
  flags: string[],
  ready: (client: Client, writes: number) => Promise<boolean> | boolean,
  afterRestart?: (client: Client) => Promise<void>,
): Promise<void> {
  const dir = await tempDir();
  const args = ['--port=0', `--sandbox=${dir.path}`, ...flags];
  let proc = await startHostProcess(args);
  let client = new Client(proc.url);
  const acked = new Map<string, Doc>(); // link -> newest acknowledged state
  let stop = false;
  let errors = 0;
  try {
    const writer = async (w: number) => {
      for (let i = 0; !stop; i++) {
        const link = `/core/examples/w${w}-${i % 5}`;
        try {
          const r =
            i < 5
              ? await client.post<Doc>('/core/examples', {
                  documentSelfLink: `w${w}-${i}`,
                  name: `w${w}`,
                  counter: i,
                  keyValues: { at: String(i) },
                })
              : await client.patch<Doc>(link, { counter: i, keyValues: { at: String(i) } });
          if (r.status === 200) {
            const prev = acked.get(link);
            if (!prev || r.body.documentVersion > prev.documentVersion) acked.set(link, r.body);
          } else errors++;
        } catch {
          return; // connection died with the process
        }
      }
    };
    const writers = Array.from({ length: 16 }, (_, w) => writer(w));
    const writes = () => [...acked.values()].reduce((n, d) => n + d.documentVersion + 1, 0);
    await waitFor('enough acknowledged writes', () => ready(client, writes()), 60_000);
    await proc.kill('SIGKILL');
    stop = true;
    await Promise.all(writers);
    await client.close();
    assert.is(errors, 0, 'no write failed before the kill');

    proc = await startHostProcess(args);
    client = new Client(proc.url);
    for (const [link, doc] of acked) {
      const now = await client.get<Doc>(link);
      assert.is(now.status, 200, link);
      assert.ok(
        now.body.documentVersion >= doc.documentVersion,
        `${link} went back from v${doc.documentVersion} to v${now.body.documentVersion}`,
      );
      const atAck = await client.get<Doc>(`${link}?documentVersion=${doc.documentVersion}`);
      assert.equal(atAck.body, doc, `${link} v${doc.documentVersion} content`);
    }
    await afterRestart?.(client);
  } finally {
    stop = true;
    await client.close();
    await proc.kill('SIGKILL');
    await dir.remove();
  }
}

test('SIGKILL during concurrent writes loses no acknowledged write', () => sigkillLosesNothing([], (_c, writes) => writes >= 400));

test('SIGKILL while snapshots are written and the log compacted loses no acknowledged write', async () => {
  // A snapshot every 300 records and 16 KiB segments: under 16 writers a snapshot is due at every
  // check, so the kill lands among snapshot writes and segment removals.
  let seen = 0;
  await sigkillLosesNothing(
    ['--snapshotEveryRecords=300', '--logSegmentBytes=16384'],
    async (client) => {
      const s = (await client.get<{ snapshotStats: { snapshots: number; segmentsRemoved: number } }>('/core/management')).body
        .snapshotStats;
      // Kill just after a fresh snapshot was seen, once a few have been written and compaction ran.
      const ready = s.snapshots >= 3 && s.segmentsRemoved > 0 && s.snapshots > seen && seen > 0;
      seen = s.snapshots;
      return ready;
    },
    async (client) => {
      const state = (await client.get<{ snapshotStats: { lastSnapshotSeq: number }; logStats: { firstSeq: number } }>('/core/management'))
        .body;
      assert.ok(state.snapshotStats.lastSnapshotSeq > 0, 'the restart loaded a snapshot');
      assert.ok(state.logStats.firstSeq > 1, 'and the log it replayed after it was compacted');
    },
  );
});

test('bad flags exit 2 with a message; help exits 0', async () => {
  const bad = runKrypton(['host', '--port=abc']);
  assert.is(await bad.exited, 2);
  assert.match(bad.output(), /bad value for --port/);
  const unknown = runKrypton(['host', '--frobnicate']);
  assert.is(await unknown.exited, 2);
  assert.match(unknown.output(), /unknown flag --frobnicate/);
  const noOut = runKrypton(['backup', '--host', 'http://127.0.0.1:1']);
  assert.is(await noOut.exited, 2);
  assert.match(noOut.output(), /--out FILE is required/);
  const noSandbox = runKrypton(['restore', 'some.backup']);
  assert.is(await noSandbox.exited, 2);
  assert.match(noSandbox.output(), /usage: krypton restore FILE --sandbox DIR/);
  const unreachable = runKrypton(['backup', '--host', 'http://127.0.0.1:1', '--out', '/tmp/krypton-unreachable.backup']);
  assert.is(await unreachable.exited, 1);
  assert.match(unreachable.output(), /krypton backup: /);
  const help = runKrypton(['help']);
  assert.is(await help.exited, 0);
  assert.match(help.output(), /--peerNodes/);
});

test('DELETE /core/management answers 202 then stops; SIGTERM stops gracefully', async () => {
  const dir = await tempDir();
  try {
    const p = await startHostProcess(['--port=0', `--sandbox=${dir.path}`]);
    const c = new Client(p.url);
    assert.is((await c.post('/core/examples', { documentSelfLink: 'x', name: 'x' })).status, 200);
    assert.is((await c.delete('/core/management')).status, 202);
    await c.close();
    assert.is(await p.exited, 0);

    const q = await startHostProcess(['--port=0', `--sandbox=${dir.path}`]);
    const c2 = new Client(q.url);
    assert.is((await c2.get<Doc>('/core/examples/x')).body.name, 'x');
    await c2.close();
    q.child.kill('SIGTERM');
    assert.is(await q.exited, 0);
  } finally {
    await dir.remove();
  }
});

test('damage before the tail stops the start with LOG_CORRUPT; --repairLog truncates there', async () => {
  const dir = await tempDir();
  try {
    const p = await startHostProcess(['--port=0', `--sandbox=${dir.path}`]);
    const c = new Client(p.url);
    for (let i = 0; i < 10; i++) await c.post('/core/examples', { documentSelfLink: `c${i}`, name: `n${i}` });
    await c.close();
    await p.kill('SIGTERM');
    const logDir = path.join(dir.path, '0', 'log');
    const [segment] = (await fs.readdir(logDir)).filter((f) => f.endsWith('.log'));
    const file = path.join(logDir, segment!);
    const bytes = await fs.readFile(file);
    const middle = Math.floor(bytes.length / 2);
    bytes[middle] = bytes[middle]! ^ 0x40;
    await fs.writeFile(file, bytes);

    const refused = runKrypton(['host', '--port=0', `--sandbox=${dir.path}`]);
    assert.is(await refused.exited, 1);
    assert.match(refused.output(), /LOG_CORRUPT/);
    assert.match(refused.output(), new RegExp(`${segment}.*offset \\d+`));

    const repaired = await startHostProcess(['--port=0', `--sandbox=${dir.path}`, '--repairLog']);
    const c2 = new Client(repaired.url);
    assert.is((await c2.get('/core/examples/c0')).status, 200);
    assert.is((await c2.get('/core/examples/c9')).status, 404);
    await c2.close();
    await repaired.kill('SIGTERM');
  } finally {
    await dir.remove();
  }
});

test.run();
