/**
 * The owner lease with real processes. An owner cut off from both peers and frozen (SIGSTOP) at
 * once, while the two others take its document over and write to it, is resumed still cut off and
 * read at once by a client that still reaches it: its view of the group is the one it was frozen
 * with, so only its lease stops it from answering the overwritten copy (issue 16.2). It must answer
 * an error (503 at the operation timeout) or the majority's state, never its old copy; with the
 * lease check removed it answers the old copy. That scenario needs root for network namespaces
 * (test/support/lease-partition.ts runs it inside them); without root it is skipped and says so.
 * Also, without a partition: an owner paused while the majority wrote, sent a read before it
 * resumes, answers the majority's state.
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { tempDir } from '../support/hosts.js';
import { startProcessGroup } from '../support/process.js';
import { waitFor } from '../support/wait.js';
import { partitionsUnsupported, setupNamespaces, teardownNamespaces } from '../../tools/torture/netns.js';

const SCENARIO = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../support/lease-partition.ts');

interface Group {
  nodes: Record<string, { status: string }>;
}

/**
 * A GET on a connection of its own, resolved with the status and body; `sent` resolves once the
 * request's bytes are with the kernel (a stopped host's socket takes them and answers on resume).
 */
function getOnItsOwn(url: string): { sent: Promise<void>; answer: Promise<{ status: number; body: string }> } {
  let sent!: () => void;
  const sentP = new Promise<void>((r) => (sent = r));
  const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = http.request(url, { method: 'GET', agent: false, timeout: 120_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.on('timeout', () => req.destroy(new Error('no answer in 120 s')));
    req.on('finish', sent);
    req.end();
  });
  return { sent: sentP, answer };
}

test('an owner resumed after a pause never answers a read from the copy the majority overwrote meanwhile', async () => {
  const group = await startProcessGroup(3, 'lease', ['--membershipQuorum=2']);
  const { ports, ids, procs, clients } = group;
  try {
    const c0 = clients[0]!;
    await waitFor('group available', async () => (await c0.get('/core/node-groups/default/available')).status === 200, 20_000);
    // A document the host about to be paused owns.
    let link = '';
    for (let i = 0; link === ''; i++) {
      const r = await c0.post<{ ownerNodeId: string }>('/core/node-selectors/default', { key: `/core/examples/leased-${i}` });
      if (r.body.ownerNodeId === ids[2]) link = `/core/examples/leased-${i}`;
    }
    const created = await c0.post('/core/examples', { documentSelfLink: link.split('/').pop(), name: 'before' });
    assert.is(created.status, 200, created.text);
    const owned = await clients[2]!.get<{ name: string }>(link);
    assert.is(owned.body.name, 'before', 'the owner serves the document');

    const owner = procs[2]!;
    owner.child.kill('SIGSTOP');
    // The majority takes the link over and writes to it; a client retries while it is parked or refused.
    let after: { status: number; text: string } = { status: 0, text: '' };
    await waitFor(
      'a write through another host acknowledged',
      async () => {
        after = await c0.patch(link, { name: 'after' });
        return after.status === 200;
      },
      30_000,
    );
    const group = await c0.get<Group>('/core/node-groups/default');
    assert.is(group.body.nodes[ids[2]!]?.status, 'UNAVAILABLE', 'the paused owner was noticed');

    const read = getOnItsOwn(`http://127.0.0.1:${ports[2]}${link}`);
    await read.sent;
    owner.child.kill('SIGCONT');
    const answer = await read.answer;
    if (answer.status === 200) {
      const name = (JSON.parse(answer.body) as { name: string }).name;
      assert.is(name, 'after', `the resumed owner answered the state the majority overwrote: ${answer.body}`);
    } else {
      assert.ok(answer.status === 503, `an error, if not the majority's state: ${answer.status} ${answer.body}`);
    }
    // Once it is back, it serves the majority's state.
    await waitFor('the resumed host serves the write made while it was paused', async () => {
      const r = await clients[2]!.get<{ name: string }>(link);
      return r.status === 200 && r.body.name === 'after';
    });
  } finally {
    await group.close();
  }
});

test('an owner resumed while cut off from its peers never answers a read from its overwritten copy', async () => {
  const why = partitionsUnsupported();
  if (why) {
    console.log(`  skipped: ${why}`);
    return;
  }
  const prefix = `kl${process.pid % 100_000}`;
  const ns = setupNamespaces(prefix, 3);
  const dir = await tempDir();
  try {
    const child = spawn(
      'ip',
      ['netns', 'exec', ns.bridge, process.execPath, '--import', 'tsx', SCENARIO, `--prefix=${prefix}`, `--dir=${dir.path}`],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (b: Buffer) => (out += b.toString()));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), 150_000);
    const code = await new Promise<number | null>((r) => child.once('exit', (c) => r(c)));
    clearTimeout(timer);
    assert.is(code, 0, `the scenario failed:\n${err.slice(-3000)}`);
    const { read, after } = JSON.parse(out.trim().split('\n').pop()!) as {
      read: { status: number; body?: { name?: string; message?: string } };
      after: { status: number; version?: number };
    };
    assert.is(after.status, 200, 'the majority wrote');
    console.log(`  the cut-off owner answered ${read.status} ${read.body?.name ?? read.body?.message ?? ''}`);
    if (read.status === 200) assert.is(read.body?.name, 'after', 'the cut-off owner answered the copy the majority overwrote');
    else assert.is(read.status, 503, `an error, if not the majority's state: ${JSON.stringify(read)}`);
  } finally {
    teardownNamespaces(ns);
    await dir.remove();
  }
});

test.run();
