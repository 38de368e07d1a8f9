/**
 * Backup and restore as an operator does it: a 3-host group is backed up online with
 * `krypton backup` (tools/backup.ts), the file is restored into three empty sandboxes, and the new
 * group started on them holds every document, every retained version and every deletion, and takes
 * writes. Also Xenon's BackupRequest to a file, and restore's refusals.
 */

import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { diskDirectory } from '../../wal/file.js';
import { readSnapshot } from '../../wal/snapshot.js';
import { backupGroup, restoreBackup } from '../../tools/backup.js';
import { restoreToGroup } from '../../tools/restore-group.js';
import { closeAll, joinAll, startGroup, startHost, tempDir, type TestHost } from '../support/hosts.js';

type Doc = { name?: string; counter?: number; documentVersion: number; documentUpdateAction?: string };
const MGMT = 'com:vmware:xenon:services:common:ServiceHostManagementService';

/**
 * Each link's latest state (or status) and every version up to `top` as the group answers it. A
 * new group's owners take the links over at a new epoch, which adds a version repeating the
 * latest state; the versions a backup must bring back are those up to the source's latest.
 */
async function history(h: TestHost, links: string[], top: (link: string) => number): Promise<unknown[]> {
  const out: unknown[] = [];
  for (const link of links) {
    const latest = await h.client.get<Doc>(link);
    out.push(latest.status === 200 ? [link, latest.body.name, latest.body.counter] : [link, latest.status]);
    for (let v = 0; v <= top(link); v++) {
      const r = await h.client.get<Doc>(`${link}?documentVersion=${v}`);
      out.push(r.status === 200 ? [link, v, r.body.name, r.body.counter, r.body.documentUpdateAction] : [link, v, r.status]);
    }
  }
  return out;
}

test('a group backed up online and restored into three empty sandboxes holds every document, version and deletion', async () => {
  const work = await tempDir();
  let source: TestHost[] | undefined;
  const restored: TestHost[] = [];
  try {
    source = await startGroup(3, () => ({ membershipQuorum: 2 }));
    const links: string[] = [];
    for (let i = 0; i < 12; i++) {
      const entry = source[i % 3]!;
      assert.is((await entry.client.post('/core/examples', { documentSelfLink: `b${i}`, name: `n${i}`, counter: 0 })).status, 200);
      links.push(`/core/examples/b${i}`);
    }
    for (let round = 1; round <= 3; round++)
      for (let i = 0; i < 12; i++) await source[(i + round) % 3]!.client.patch(links[i]!, { counter: round });
    for (let i = 0; i < 12; i += 4) assert.is((await source[1]!.client.delete(links[i]!)).status, 200);
    // Versions 0-3 of each link, and a tombstone at 4 for every fourth.
    const top = (link: string) => (Number(link.slice('/core/examples/b'.length)) % 4 === 0 ? 4 : 3);
    const before = await history(source[0]!, links, top);

    const out = path.join(work.path, 'group.backup');
    const summary = await backupGroup({ host: source[2]!.host.uri, out });
    assert.is(summary.members.length, 3);
    assert.is(summary.links, 12);
    assert.is(summary.versions, 12 * 4 + 3);
    assert.is(summary.conflicts, 0);
    await closeAll(source);
    source = undefined;

    const sandboxes = [0, 1, 2].map((i) => path.join(work.path, `new${i}`));
    for (const s of sandboxes) assert.equal(await restoreBackup(out, s, 0), { hostDir: path.join(s, '0'), links: 12, versions: 51 });
    for (const s of sandboxes) restored.push(await startHost({ membershipQuorum: 2 }, s));
    await joinAll(restored);
    assert.equal(await history(restored[1]!, links, top), before);
    const next = await restored[2]!.client.patch<Doc>(links[1]!, { counter: 100 });
    assert.is(next.status, 200, next.text);
    assert.ok(next.body.documentVersion >= 4);
  } finally {
    await closeAll(source);
    await closeAll(restored);
    await work.remove();
  }
});

test('krypton restore --host: a backup restored into a running group holds every document, version and deletion; run again it writes nothing; a group holding a document refuses it whole', async () => {
  const work = await tempDir();
  let source: TestHost[] | undefined;
  let target: TestHost[] | undefined;
  try {
    source = await startGroup(3, () => ({ membershipQuorum: 2 }));
    const links: string[] = [];
    for (let i = 0; i < 9; i++) {
      assert.is((await source[i % 3]!.client.post('/core/examples', { documentSelfLink: `g${i}`, name: `n${i}`, counter: 0 })).status, 200);
      links.push(`/core/examples/g${i}`);
    }
    for (let round = 1; round <= 2; round++)
      for (let i = 0; i < 9; i++) await source[(i + round) % 3]!.client.patch(links[i]!, { counter: round });
    assert.is((await source[0]!.client.delete(links[4]!)).status, 200);
    const top = (link: string) => (link === links[4] ? 3 : 2);
    const before = await history(source[1]!, links, top);
    const out = path.join(work.path, 'online.backup');
    assert.is((await backupGroup({ host: source[0]!.host.uri, out })).versions, 9 * 3 + 1);
    await closeAll(source);
    source = undefined;

    target = await startGroup(3, () => ({ membershipQuorum: 2 }));
    const first = await restoreToGroup({ file: out, host: target[1]!.host.uri });
    assert.equal([first.members.length, first.links, first.versions], [3, 9, 28]);
    assert.is(first.applied, 28 * 3, 'every member holds a copy of every version (the default selector replicates to all)');
    // Run again before anything reads the links (a read of a restored link takes it over under
    // this group's epoch, a version past the backup's), as after a restore stopped midway.
    const again = await restoreToGroup({ file: out, host: target[2]!.host.uri });
    assert.equal([again.applied, again.held], [0, 28 * 3], 'a restore run again writes nothing');
    for (const h of target) assert.equal(await history(h, links, top), before, `through ${h.host.id}`);

    // The group writes on: the first write of a restored link takes it over under a new epoch.
    const next = await target[0]!.client.patch<Doc>(links[1]!, { counter: 100 });
    assert.is(next.status, 200, next.text);
    // Now the group holds the links past the backup: the restore is refused before anything is written.
    await target[0]!.client.delete(links[2]!);
    const refused = await restoreToGroup({ file: out, host: target[0]!.host.uri }).then(
      () => undefined,
      (e: Error) => e.message,
    );
    // Every link was read since (each read took its link over), so the first page's first link is named.
    assert.match(String(refused), /409: restore needs a group without the backup's documents: .* past the backup's latest version/);
    assert.ok(refused?.includes(links[0]!), `the refusal names the link: ${refused}`);
    const after = await target[1]!.client.get<Doc>(links[2]!);
    assert.is(after.status, 404, 'the deleted link was not brought back by the refused restore');
  } finally {
    await closeAll(source);
    await closeAll(target);
    await work.remove();
  }
});

test("BackupRequest writes this host's backup to a file: destination; restore refuses a host snapshot and a used folder", async () => {
  const work = await tempDir();
  const h = await startHost({ snapshotEveryRecords: 0 });
  try {
    for (let i = 0; i < 5; i++) await h.client.post('/core/examples', { documentSelfLink: `r${i}`, name: `n${i}` });
    const file = path.join(work.path, 'host.backup');
    const r = await h.client.patch<{ bytes: number; entries: number }>('/core/management', {
      kind: `${MGMT}:BackupRequest`,
      destination: `file://${file}`,
    });
    assert.is(r.status, 200, r.text);
    assert.is(r.body.entries, 5);
    const links: string[] = [];
    await readSnapshot(diskDirectory(work.path), 'host.backup', (e) => {
      if (e.kind === 'version') links.push(e.link);
    });
    assert.equal(links.sort(), ['/core/examples/r0', '/core/examples/r1', '/core/examples/r2', '/core/examples/r3', '/core/examples/r4']);

    const snap = await h.host.checkpoints.snapshot();
    let err: unknown;
    try {
      await restoreBackup(path.join(h.host.dir, 'snapshots', snap!.name), path.join(work.path, 'x'), 0);
    } catch (e) {
      err = e;
    }
    assert.match(String((err as Error)?.message), /is a host's snapshot .* not a backup/);
    const used = path.join(work.path, 'used');
    await restoreBackup(file, used, 0);
    err = undefined;
    try {
      await restoreBackup(file, used, 0);
    } catch (e) {
      err = e;
    }
    assert.match(String((err as Error)?.message), /already holds a log or snapshots/);
    const damaged = path.join(work.path, 'damaged.backup');
    const bytes = await fs.readFile(file);
    bytes[bytes.length - 20]! ^= 1;
    await fs.writeFile(damaged, bytes);
    err = undefined;
    try {
      await restoreBackup(damaged, path.join(work.path, 'y'), 0);
    } catch (e) {
      err = e;
    }
    assert.match(String((err as Error)?.message), /damaged at offset \d+/);
  } finally {
    await h.close();
    await work.remove();
  }
});

test.run();
