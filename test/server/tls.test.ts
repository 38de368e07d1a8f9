/**
 * HTTPS in one process: two hosts with plain HTTP off join and replicate over TLS with
 * certificates made by openssl; plain HTTP on the secure port gets a 400 saying so; a host that
 * does not trust the CA cannot join; client-certificate checks (NEED) keep out clients without
 * one while peers still join; and every way the key and certificate files can be wrong stops the
 * start with one line that names the flag.
 */
import net from 'node:net';
import { suite } from 'uvu';
import * as assert from 'uvu/assert';
import { KINDS } from '../../lib/document.js';
import { isKryptonError } from '../../lib/errors.js';
import { defaultConfig, parseHostArgs, type Config } from '../../server/base/config.js';
import { Host } from '../../server/host/host.js';
import { makeCerts, type Certs } from '../support/certs.js';
import { Client } from '../support/http.js';
import { startHost, tempDir, type TestHost } from '../support/hosts.js';
import { waitFor } from '../support/wait.js';

const isUsageError = (e: unknown) => isKryptonError(e) && e.code === 'INVALID_USAGE';

const t = suite<{ certs: Certs }>('tls');

t.before(async (ctx) => {
  ctx.certs = await makeCerts();
});
t.after(async (ctx) => {
  await ctx.certs.remove();
});

const secure = (c: Certs, extra: Partial<Config> = {}): Partial<Config> => ({
  port: -1,
  securePort: 0,
  keyFile: c.hostKey,
  certificateFile: c.hostCert,
  caFile: c.caCert,
  ...extra,
});

async function members(h: TestHost): Promise<string[]> {
  const g = await h.client.get<{ nodes: Record<string, { status: string; groupReference: string }> }>('/core/node-groups/default');
  return Object.values(g.body.nodes)
    .filter((n) => n.status === 'AVAILABLE')
    .map((n) => n.groupReference)
    .sort();
}

async function join(h: TestHost, to: TestHost): Promise<number> {
  const r = await h.client.post('/core/node-groups/default', {
    kind: KINDS.joinPeerRequest,
    memberGroupReference: `${to.host.uri}/core/node-groups/default`,
  });
  return r.status;
}

/** Sends raw bytes and returns everything the server answers before it closes. */
function rawExchange(port: number, data: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(data));
    let out = '';
    s.on('data', (b) => (out += b.toString()));
    s.on('close', () => resolve(out));
    s.on('error', reject);
    s.setTimeout(5000, () => reject(new Error('no answer in 5 s')));
  });
}

t('two https-only hosts join, replicate and forward over TLS', async ({ certs }) => {
  const a = await startHost(secure(certs, { id: 'tls-a' }));
  const b = await startHost(secure(certs, { id: 'tls-b' }));
  try {
    assert.match(a.host.uri, /^https:\/\/127\.0\.0\.1:\d+$/);
    assert.is(a.host.port, -1);
    const state = await a.client.get('/core/management');
    assert.is(state.body.httpPort, -1);
    assert.is(state.body.httpsPort, a.host.securePort);

    assert.is(await join(b, a), 200);
    await waitFor('both hosts see two members', async () => (await members(a)).length === 2 && (await members(b)).length === 2, 20_000);
    assert.equal(await members(a), [`${a.host.uri}/core/node-groups/default`, `${b.host.uri}/core/node-groups/default`].sort());

    const created = await b.client.post('/core/examples', { name: 'over tls' }, { 'x-xenon-rpl-quorum': '2' });
    assert.is(created.status, 200, created.text);
    const link = created.body.documentSelfLink as string;
    for (const h of [a, b]) {
      const local = await h.client.send('GET', link, undefined, { pragma: 'xn-no-fwd' });
      assert.is(local.status, 200, 'quorum 2 means both copies exist when the client hears success');
      assert.is(local.body.name, 'over tls');
      const routed = await h.client.get(link);
      assert.is(routed.body.documentOwner, created.body.documentOwner);
    }
    const patched = await a.client.patch(link, { name: 'patched' });
    assert.is(patched.status, 200);
    assert.is(patched.body.documentVersion, 1);
  } finally {
    await b.close();
    await a.close();
  }
});

t('plain HTTP sent to the secure port gets a 400 that says to use https', async ({ certs }) => {
  const a = await startHost(secure(certs));
  try {
    const reply = await rawExchange(a.host.securePort, 'GET /core/management HTTP/1.1\r\nhost: x\r\n\r\n');
    assert.match(reply, /^HTTP\/1\.1 400 /);
    const body = JSON.parse(reply.slice(reply.indexOf('\r\n\r\n') + 4)) as { message: string; statusCode: number };
    assert.is(body.statusCode, 400);
    assert.match(body.message, `use https://127.0.0.1:${a.host.securePort}/`);
    // The port still serves TLS afterwards.
    assert.is((await a.client.get('/core/management')).status, 200);
  } finally {
    await a.close();
  }
});

t('a host that does not trust the CA cannot join', async ({ certs }) => {
  const a = await startHost(secure(certs, { id: 'trusted' }));
  // Same kind of certificate, but no --caFile: it cannot verify a's certificate.
  const lost = await startHost(secure(certs, { id: 'no-ca', caFile: undefined }));
  const lostClient = new Client(lost.host.uri, { ca: await certs.read(certs.caCert) });
  try {
    // Xenon accepts a JoinPeerRequest and joins in the background, retrying; the reason it cannot
    // is in the joining host's log.
    const r = await lostClient.post('/core/node-groups/default', {
      kind: KINDS.joinPeerRequest,
      memberGroupReference: `${a.host.uri}/core/node-groups/default`,
    });
    assert.is(r.status, 200);
    await waitFor(
      'the joining host logs why it cannot join',
      async () => {
        const log = await lostClient.get<{ items: string[] }>('/core/management/process-log');
        return log.body.items.some((l) => /cannot join through https:.*certificate/i.test(l));
      },
      20_000,
    );
    for (const [c, id] of [
      [a.client, 'trusted'],
      [lostClient, 'no-ca'],
    ] as const) {
      const g = await c.get<{ nodes: Record<string, unknown> }>('/core/node-groups/default');
      assert.equal(Object.keys(g.body.nodes), [id], `${id} stays alone`);
    }
  } finally {
    await lostClient.close();
    await lost.close();
    await a.close();
  }
});

t('with --sslClientAuthMode=NEED, peers present their certificate and clients without one are refused', async ({ certs }) => {
  const a = await startHost(secure(certs, { id: 'need-a', sslClientAuthMode: 'NEED' }));
  const b = await startHost(secure(certs, { id: 'need-b', sslClientAuthMode: 'NEED' }));
  const ca = await certs.read(certs.caCert);

  const aAsPeer = new Client(a.host.uri, { ca, cert: await certs.read(certs.hostCert), key: await certs.read(certs.hostKey) });
  const bAsPeer = new Client(b.host.uri, { ca, cert: await certs.read(certs.hostCert), key: await certs.read(certs.hostKey) });
  const rogue = new Client(a.host.uri, { ca, cert: await certs.read(certs.otherHostCert), key: await certs.read(certs.otherHostKey) });
  try {
    const anonymous = await a.client.get('/core/management').then(
      (r) => `answered ${r.status}`,
      (e: Error) => e.message,
    );
    assert.not.match(anonymous, /^answered/, 'a client without a certificate must not get an answer');
    const byRogue = await rogue.get('/core/management').then(
      (r) => `answered ${r.status}`,
      (e: Error) => e.message,
    );
    assert.not.match(byRogue, /^answered/, 'a certificate from another CA must not get an answer');

    const r = await bAsPeer.post('/core/node-groups/default', {
      kind: KINDS.joinPeerRequest,
      memberGroupReference: `${a.host.uri}/core/node-groups/default`,
    });
    assert.is(r.status, 200, r.text);
    await waitFor(
      'two members over mutual TLS',
      async () =>
        (await aAsPeer.get<{ nodes: Record<string, { status: string }> }>('/core/node-groups/default')).body.nodes['need-b']?.status ===
        'AVAILABLE',
      20_000,
    );
  } finally {
    for (const c of [aAsPeer, bAsPeer, rogue]) await c.close();
    await b.close();
    await a.close();
  }
});

t(
  'with --sslClientAuthMode=WANT a verified client certificate proves membership: hosts join without a secret, others get 403',
  async ({ certs }) => {
    const a = await startHost(secure(certs, { id: 'want-a', sslClientAuthMode: 'WANT' }));
    const b = await startHost(secure(certs, { id: 'want-b', sslClientAuthMode: 'WANT' }));
    const ca = await certs.read(certs.caCert);
    const member = new Client(a.host.uri, { ca, cert: await certs.read(certs.hostCert), key: await certs.read(certs.hostKey) });
    const rogue = new Client(a.host.uri, { ca, cert: await certs.read(certs.otherHostCert), key: await certs.read(certs.otherHostKey) });
    try {
      // No peer secret anywhere: gossip, joins and replication pass on the hosts' certificates.
      assert.is(await join(b, a), 200);
      await waitFor('two members by certificate', async () => (await members(a)).length === 2 && (await members(b)).length === 2, 20_000);
      const created = await b.client.post('/core/examples', { name: 'by certificate' }, { 'x-xenon-rpl-quorum': '2' });
      assert.is(created.status, 200, created.text);

      const heads = { kind: 'heads', factoryLink: '/core/examples' };
      const anonymous = await a.client.post('/core/node-selectors/default/synch', heads);
      assert.is(anonymous.status, 403, 'no client certificate: not a member');
      assert.is((await rogue.post('/core/node-selectors/default/synch', heads)).status, 403, 'a certificate from another CA: not a member');
      assert.is((await member.post('/core/node-selectors/default/synch', heads)).status, 200, 'a certificate from the CA: a member');
      const injected = await a.client.send(
        'PATCH',
        created.body.documentSelfLink as string,
        { name: 'x', documentVersion: 9, documentEpoch: 9 },
        { pragma: 'xn-rpl' },
      );
      assert.is(injected.status, 403);
      // Clients without a certificate still use the API (WANT, not NEED).
      assert.is((await a.client.get(created.body.documentSelfLink as string)).body.name, 'by certificate');
    } finally {
      await member.close();
      await rogue.close();
      await b.close();
      await a.close();
    }
  },
);

t('bad key and certificate files stop the start with one line naming the flag', async ({ certs }) => {
  const dir = await tempDir();
  const start = (extra: Partial<Config>) =>
    Host.start({ ...defaultConfig(), port: 0, sandbox: dir.path, logLevel: 'silent', ...secure(certs), ...extra }).then(
      async (h) => {
        await h.stop();
        return 'started';
      },
      (e: Error) => e.message,
    );
  try {
    const cases: Array<[Partial<Config>, RegExp]> = [
      [{ keyFile: certs.hostKeyEncrypted }, /--keyFile .* is encrypted: give its password with --keyPassphrase/],
      [{ keyFile: certs.hostKeyEncrypted, keyPassphrase: 'wrong' }, /--keyPassphrase does not decrypt --keyFile/],
      [{ keyFile: `${certs.dir}/missing.key` }, /cannot read --keyFile .*missing\.key: no such file/],
      [{ certificateFile: certs.hostKey }, /--certificateFile .* holds no PEM certificate/],
      [{ keyFile: certs.hostCert }, /--keyFile .* is not a PEM private key/],
      [{ certificateFile: certs.strangerCert }, /--keyFile .* does not belong to the certificate in --certificateFile/],
      [{ caFile: certs.hostKey }, /--caFile .* holds no PEM certificate/],
    ];
    for (const [extra, expected] of cases) {
      const msg = await start(extra);
      assert.match(msg, expected);
      assert.not.match(msg, /\n/, 'one line');
    }
    assert.is(await start({ keyFile: certs.hostKeyEncrypted, keyPassphrase: certs.passphrase }), 'started');
  } finally {
    await dir.remove();
  }
});

t('flag combinations that cannot work are refused before anything starts', () => {
  const bad = (args: string[], expected: RegExp) =>
    assert.throws(
      () => parseHostArgs(args),
      (e: Error) => isUsageError(e) && expected.test(e.message),
    );
  bad(['--port=-1'], /--port=-1 turns plain HTTP off, so --securePort .* is required/);
  bad(['--securePort=8443'], /--securePort needs both --keyFile and --certificateFile/);
  bad(['--keyFile=k.pem'], /only apply to HTTPS: add --securePort/);
  bad(['--securePort=8000', '--keyFile=k', '--certificateFile=c'], /--port and --securePort cannot both be 8000/);
  bad(['--sslClientAuthMode=MAYBE'], /expected NONE, WANT or NEED/);
  bad(['--sslClientAuthMode=NEED'], /only applies to HTTPS/);
  bad(['--securePort=8443', '--keyFile=k', '--certificateFile=c', '--sslClientAuthMode=WANT'], /--sslClientAuthMode=WANT needs --caFile/);
  bad(['--peerNodes=ftp://x:1'], /not an http:\/\/ or https:\/\/ URI/);
  const ok = parseHostArgs([
    '--port=-1',
    '--securePort=8000',
    '--keyFile=k.pem',
    '--certificateFile=c.pem',
    '--peerNodes=https://127.0.0.1:8000,https://127.0.0.1:8001',
  ]);
  assert.is(ok.port, -1);
  assert.is(ok.securePort, 8000);
  assert.equal(ok.peerNodes, ['https://127.0.0.1:8000', 'https://127.0.0.1:8001']);
});

t.run();
