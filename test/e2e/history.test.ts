/**
 * Complete history with real processes: 3 hosts, quorum 2; one is killed, 1,000 updates go to 10
 * documents through the others, and it is started again. Once the group is whole, the restarted
 * host answers every `?documentVersion=N` its peers answer (from its own copy and routed to the
 * owner), an INCLUDE_ALL_VERSIONS query gives the same results through every host, and the log
 * tools (`krypton log export --all-versions`) read the same versions from every host's folder.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Client } from '../support/http.js';
import { tempDir } from '../support/hosts.js';
import { spawn } from 'node:child_process';
import { KRYPTON_BIN, startHostProcess, type HostProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

interface Doc {
  documentSelfLink: string;
  documentVersion: number;
  documentEpoch: number;
  name: string;
}

const PORTS = [8000, 8001, 8002];
const peers = `--peerNodes=${PORTS.map((p) => `http://127.0.0.1:${p}`).join(',')}`;
const local = { pragma: 'xn-no-fwd' };
const DOCS = 10;
const UPDATES = 1000;

async function ready(clients: Client[]): Promise<boolean> {
  for (const c of clients) {
    const g = await c.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default');
    if (Object.values(g.body?.nodes ?? {}).filter((n) => n.status === 'AVAILABLE').length < clients.length) return false;
    if ((await c.get('/core/node-groups/default/available')).status !== 200) return false;
  }
  return true;
}

/** Every retained version of the documents a host holds itself, "link@version:epoch:name", sorted. */
async function allVersions(c: Client): Promise<string[]> {
  const r = await c.post<{ results: { documentLinks: string[]; documents?: Record<string, Doc> } }>('/core/local-query-tasks', {
    taskInfo: { isDirect: true },
    querySpec: {
      options: ['INCLUDE_ALL_VERSIONS', 'EXPAND_CONTENT'],
      query: { term: { propertyName: 'documentSelfLink', matchValue: '/core/examples/hist-*', matchType: 'WILDCARD' } },
    },
  });
  assert.is(r.status, 200, JSON.stringify(r.body));
  return Object.values(r.body.results.documents ?? {})
    .map((d) => `${d.documentSelfLink}@${d.documentVersion}:${d.documentEpoch}:${d.name}`)
    .sort();
}

/** `krypton log export --all-versions` of a host folder: its stdout, once it exited 0. */
function exportAll(folder: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [KRYPTON_BIN, 'log', 'export', folder, '--all-versions'], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => (err += b.toString()));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0 ? resolve(Buffer.concat(out).toString('utf8')) : reject(new Error(`log export exited ${code}: ${err}`)),
    );
  });
}

test('a host restarted after missing 1,000 updates to 10 documents answers every version its peers answer', async () => {
  const dir = await tempDir();
  const procs: (HostProcess | undefined)[] = [];
  const clients = PORTS.map((p) => new Client(`http://127.0.0.1:${p}`));
  const start = (i: number) =>
    startHostProcess([`--port=${PORTS[i]}`, `--sandbox=${dir.path}`, `--id=hist${PORTS[i]}`, peers, '--membershipQuorum=2']);
  try {
    for (let i = 0; i < PORTS.length; i++) procs.push(await start(i));
    await waitFor('group', () => ready(clients), 20_000);
    const links = Array.from({ length: DOCS }, (_, i) => `/core/examples/hist-${i}`);
    for (const l of links) assert.is((await clients[0]!.post('/core/examples', { documentSelfLink: l, name: 'v0' })).status, 200);

    await procs[2]!.kill('SIGKILL');
    procs[2] = undefined;
    const up = clients.slice(0, 2);
    await waitFor('the others carry on without it', async () => (await up[0]!.get('/core/node-groups/default/available')).status === 200);
    // 100 updates per document, the documents side by side, through both remaining hosts.
    await Promise.all(
      links.map(async (l, i) => {
        for (let n = 1; n <= UPDATES / DOCS; n++) {
          const r = await up[(i + n) % 2]!.put(l, { name: `v${n}` });
          assert.is(r.status, 200, `${l} update ${n}: ${r.text}`);
        }
      }),
    );

    procs[2] = await start(2);
    await waitFor('the group whole again', () => ready(clients), 30_000);
    const back = clients[2]!;
    // The restarted host takes its own documents back over (a new version each) while the owners
    // send it what it missed: wait until every host holds the same versions, as a user comparing them would.
    const want = await waitFor(
      'every host holds the same versions',
      async () => {
        const [a, b, c] = await Promise.all(clients.map(allVersions));
        return a!.join() === b!.join() && a!.join() === c!.join() ? a : undefined;
      },
      30_000,
    ).catch(async (e) => {
      const [a, , c] = await Promise.all(clients.map(allVersions));
      const got = new Set(c);
      throw new Error(
        `${(e as Error).message}; the restarted host lacks ${a!
          .filter((x) => !got.has(x))
          .slice(0, 10)
          .join(' ')} …`,
      );
    });
    assert.is(want.length, DOCS * 100, 'each document retains its latest 100 versions');
    // The log tools, run on each host's folder (they only read), rebuild the same versions.
    for (const port of PORTS) {
      const out = await exportAll(`${dir.path}/${port}`);
      const exported = out
        .split('\n')
        .filter((line) => line.startsWith('{'))
        .map((line) => JSON.parse(line) as Doc)
        .filter((d) => d.documentSelfLink.startsWith('/core/examples/hist-'))
        .map((d) => `${d.documentSelfLink}@${d.documentVersion}:${d.documentEpoch}:${d.name}`)
        .sort();
      assert.equal(exported, want, `krypton log export of host ${port}`);
    }
    for (const entry of want) {
      const [link, rest] = entry.split('@') as [string, string];
      const v = rest.split(':')[0];
      for (const headers of [local, {}]) {
        const r = await back.send<Doc>('GET', `${link}?documentVersion=${v}`, undefined, headers);
        assert.is(r.status, 200, `${link}?documentVersion=${v} ${headers === local ? 'from its copy' : 'through it'}: ${r.text}`);
        assert.is(`${link}@${r.body.documentVersion}:${r.body.documentEpoch}:${r.body.name}`, entry);
      }
    }
  } finally {
    for (const c of clients) await c.close();
    for (const p of procs) await p?.kill('SIGKILL');
    await dir.remove();
  }
});

test.run();
