/**
 * The log tools on a compacted log: export and replay start from the snapshot that covers what
 * the log lost and agree with the host; a point older than the snapshot is refused with the
 * oldest one that can be shown; verify checks the snapshots too and does not call the compacted
 * start a gap; inspect says the records before it are gone.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { startHost } from '../support/hosts.js';
import { cli, jsonLines } from './support.js';

interface Doc {
  documentSelfLink: string;
  documentVersion: number;
  name?: string;
}

test('export, replay, verify and inspect on a log compacted behind a snapshot', async () => {
  const h = await startHost({ snapshotEveryRecords: 0, logSegmentBytes: 8192 });
  try {
    for (let i = 0; i < 10; i++) await h.client.post('/core/examples', { documentSelfLink: `t${i}`, name: `v0-${i}` });
    for (let round = 1; round <= 8; round++)
      for (let i = 0; i < 10; i++) await h.client.patch(`/core/examples/t${i}`, { name: `v${round}-${i}` });
    const snap = await h.host.checkpoints.snapshot();
    assert.ok(snap);
    for (let i = 0; i < 10; i += 2) await h.client.patch(`/core/examples/t${i}`, { name: `tail-${i}` });
    await h.client.delete('/core/examples/t9');
    const dir = h.host.dir;

    const exported = jsonLines<Doc>(await cli(['export', '--all-versions', dir]));
    const fromHost: Doc[] = [];
    for (let i = 0; i < 10; i++) {
      const link = `/core/examples/t${i}`;
      for (let v = 0; v < 12; v++) {
        const r = await h.client.get<Doc>(`${link}?documentVersion=${v}`);
        if (r.status === 200) fromHost.push(r.body);
      }
    }
    const key = (d: Doc) => `${d.documentSelfLink}@${d.documentVersion}:${d.name}`;
    const hostKeys = fromHost.map(key).sort();
    assert.equal(exported.map(key).sort(), hostKeys);
    assert.ok(
      exported.some((d) => d.name === 'v1-3'),
      'versions only the snapshot holds are exported',
    );

    const old = await cli(['replay', '--at-seq', '5', dir]);
    assert.is(old.code, 1);
    assert.match(old.stderr, /seq 5 is older than what this host kept/);
    assert.match(old.stderr, new RegExp(`oldest seq replay can show is ${snap!.lastSeq}`));
    const atSnap = await cli(['replay', '--at-seq', String(snap!.lastSeq), '--link', '/core/examples/t0', '--json', dir]);
    assert.is(atSnap.code, 0, atSnap.stderr);
    assert.match(atSnap.stdout, /v8-0/);

    const verified = await cli(['verify', dir]);
    assert.is(verified.code, 0, verified.stdout + verified.stderr);
    assert.match(verified.stdout, /compacted: the records before seq \d+ are in/);
    const inspected = await cli(['inspect', '--limit', '1', dir]);
    assert.is(inspected.code, 0);
    assert.match(inspected.stderr, /the log was compacted: the records before seq \d+ are gone/);

    const file = path.join(dir, 'snapshots', snap!.name);
    const bytes = await fs.readFile(file);
    bytes[100]! ^= 0x04;
    await fs.writeFile(file, bytes);
    const damaged = await cli(['verify', dir]);
    assert.is(damaged.code, 1);
    assert.match(damaged.stdout, new RegExp(`snapshots/${snap!.name} at offset \\d+: corrupt`));
  } finally {
    await h.close();
  }
});

test.run();
