/**
 * Seed 001's HTTPS section with real processes: two hosts started with `--port=-1 --securePort
 * --keyFile --certificateFile --caFile` and https:// peers join and replicate over TLS (one of
 * them with an encrypted key and --keyPassphrase); plain HTTP on a secure port is refused; a host
 * that does not trust the CA cannot join, while one that trusts it through NODE_EXTRA_CA_CERTS
 * can; a wrong passphrase stops `krypton host` with one line and exit code 1. Certificates are
 * made by openssl for the test.
 */
import fs from 'node:fs/promises';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { makeCerts, type Certs } from '../support/certs.js';
import { Client } from '../support/http.js';
import { tempDir } from '../support/hosts.js';
import { runKrypton, startHostProcess, type HostProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const PEERS = '--peerNodes=https://127.0.0.1:8000,https://127.0.0.1:8001';

function secureArgs(port: number, sandbox: string, c: Certs, key: 'plain' | 'encrypted' = 'plain'): string[] {
  return [
    `--id=hostAtPort${port}`,
    `--sandbox=${sandbox}`,
    '--port=-1',
    `--securePort=${port}`,
    ...(key === 'plain' ? [`--keyFile=${c.hostKey}`] : [`--keyFile=${c.hostKeyEncrypted}`, `--keyPassphrase=${c.passphrase}`]),
    `--certificateFile=${c.hostCert}`,
  ];
}

async function available(c: Client): Promise<string[]> {
  const g = await c.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default');
  return Object.entries(g.body?.nodes ?? {})
    .filter(([, n]) => n.status === 'AVAILABLE')
    .map(([id]) => id)
    .sort();
}

test('two hosts join and replicate over TLS; plain HTTP is refused; a host without the CA cannot join', async () => {
  const certs = await makeCerts();
  const dir = await tempDir();
  const procs: HostProcess[] = [];
  const ca = await certs.read(certs.caCert);
  const c0 = new Client('https://127.0.0.1:8000', { ca });
  const c1 = new Client('https://127.0.0.1:8001', { ca });
  const c2 = new Client('https://127.0.0.1:8002', { ca });
  const plain = new Client('http://127.0.0.1:8000');
  try {
    procs.push(await startHostProcess([...secureArgs(8000, dir.path, certs), `--caFile=${certs.caCert}`, PEERS]));
    procs.push(await startHostProcess([...secureArgs(8001, dir.path, certs, 'encrypted'), `--caFile=${certs.caCert}`, PEERS]));
    assert.is(procs[0]!.url, 'https://127.0.0.1:8000');
    await waitFor(
      'both hosts available over TLS',
      async () => (await available(c0)).length === 2 && (await available(c1)).length === 2,
      30_000,
    );
    const g = await c0.get<{ nodes: Record<string, { groupReference: string }> }>('/core/node-groups/default');
    assert.is(g.body.nodes.hostAtPort8001!.groupReference, 'https://127.0.0.1:8001/core/node-groups/default');

    // Seed 001's replication walk-through, over https.
    const post = await c0.send('POST', '/core/examples', '{"documentSelfLink":"one","name":"example one"}', {
      'Content-type': 'application/json',
      'x-xenon-rpl-quorum': '2',
    });
    assert.is(post.status, 200, post.text);
    for (const c of [c0, c1]) {
      const list = await c.get<{ documentLinks: string[] }>('/core/examples');
      assert.equal(list.body.documentLinks, ['/core/examples/one']);
      const doc = await c.get('/core/examples/one');
      assert.is(doc.body.documentOwner, post.body.documentOwner);
      assert.is(doc.body.name, 'example one');
    }

    // Plain HTTP on the secure port: refused with a 400 that says what to do.
    const refused = await plain.get('/core/examples');
    assert.is(refused.status, 400);
    assert.match(refused.body.message as string, 'use https://127.0.0.1:8000/');

    // A third host that does not trust the CA: its joins fail on the certificate, and nobody lists it.
    const lost = await startHostProcess([
      ...secureArgs(8002, dir.path, certs),
      '--peerNodes=https://127.0.0.1:8000,https://127.0.0.1:8001,https://127.0.0.1:8002',
    ]);
    procs.push(lost);
    await waitFor(
      'the untrusting host logs why it cannot join',
      () => /cannot join through https:\/\/127\.0\.0\.1:800[01].*certificate/i.test(lost.output()),
      20_000,
    );
    assert.equal(await available(c0), ['hostAtPort8000', 'hostAtPort8001']);
    assert.equal(await available(c2), ['hostAtPort8002']);
    await lost.kill('SIGKILL');

    // The same host trusting the CA through NODE_EXTRA_CA_CERTS instead of --caFile joins.
    procs.push(
      await startHostProcess(
        [...secureArgs(8002, dir.path, certs), '--peerNodes=https://127.0.0.1:8000,https://127.0.0.1:8001,https://127.0.0.1:8002'],
        15_000,
        { ...process.env, NODE_EXTRA_CA_CERTS: certs.caCert },
      ),
    );
    await waitFor('three hosts available', async () => (await available(c0)).length === 3 && (await available(c2)).length === 3, 30_000);
    const viaNew = await c2.get('/core/examples/one');
    assert.is(viaNew.body.name, 'example one');
  } finally {
    for (const c of [c0, c1, c2, plain]) await c.close();
    for (const p of procs) await p.kill('SIGKILL');
    await dir.remove();
    await certs.remove();
  }
});

test('a wrong passphrase stops krypton host with one line and exit code 1', async () => {
  const certs = await makeCerts();
  const dir = await tempDir();
  try {
    const p = runKrypton([
      'host',
      '--port=-1',
      '--securePort=0',
      `--sandbox=${dir.path}`,
      `--keyFile=${certs.hostKeyEncrypted}`,
      '--keyPassphrase=nope',
      `--certificateFile=${certs.hostCert}`,
    ]);
    assert.is(await p.exited, 1);
    const lines = p.output().trim().split('\n');
    assert.equal(lines, [
      `krypton host: cannot start: --keyPassphrase does not decrypt --keyFile ${certs.hostKeyEncrypted} (wrong passphrase)`,
    ]);
  } finally {
    await dir.remove();
    await certs.remove();
  }
});

test('krypton certs writes a CA and a host certificate a host starts with and clients trust', async () => {
  const dir = await tempDir();
  const procs: HostProcess[] = [];
  try {
    const made = runKrypton(['certs', `${dir.path}/certs`]);
    assert.is(await made.exited, 0, made.output());
    const f = (n: string) => `${dir.path}/certs/${n}`;
    procs.push(
      await startHostProcess([
        '--port=-1',
        '--securePort=0',
        `--sandbox=${dir.path}`,
        `--keyFile=${f('host.key')}`,
        `--certificateFile=${f('host.crt')}`,
        `--caFile=${f('ca.crt')}`,
      ]),
    );
    const c = new Client(procs[0]!.url, { ca: await fs.readFile(f('ca.crt'), 'utf8') });
    try {
      assert.is((await c.get('/core/management')).status, 200);
    } finally {
      await c.close();
    }
    const usage = runKrypton(['certs']);
    assert.is(await usage.exited, 2);
  } finally {
    for (const p of procs) await p.kill('SIGKILL');
    await dir.remove();
  }
});

test.run();
