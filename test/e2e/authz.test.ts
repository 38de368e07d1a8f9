/**
 * Access control with real processes on the seeds' ports (8000-8002): three hosts started with
 * --peerSecretFile, --isAuthorizationEnabled and an admin. A request with the replication pragma
 * (or to the log-shipping endpoint) from a non-member gets 403; a user with a read-only role can
 * GET on any host but not PATCH; without a token requests get 403. Authorization with peers and
 * no way to prove membership stops at start with exit code 2.
 */
import fs from 'node:fs/promises';
import path from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { encodeBatch, REPLICATION_CONTENT_TYPE } from '../../server/replication/replicator.js';
import { Client } from '../support/http.js';
import { tempDir } from '../support/hosts.js';
import { runKrypton, startHostProcess, type HostProcess } from '../support/process.js';
import { waitFor } from '../support/wait.js';

const PORTS = [8000, 8001, 8002];
const PEERS = `--peerNodes=${PORTS.map((p) => `http://127.0.0.1:${p}`).join(',')}`;
const SECRET = 'e2e-peer-secret-3f9c1a7b52d04e68';
const member = { 'x-krypton-peer-secret': SECRET };
const ADMIN = 'admin@localhost';
const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const as = (token: string) => ({ 'x-xenon-auth-token': token });

test('peer endpoints for members, read-only role, no token: the three checks on real processes', async () => {
  const dir = await tempDir();
  const procs: HostProcess[] = [];
  const clients = PORTS.map((p) => new Client(`http://127.0.0.1:${p}`));
  try {
    const secretFile = path.join(dir.path, 'peer-secret');
    await fs.writeFile(secretFile, `${SECRET}\n`, { mode: 0o600 });
    for (const port of PORTS) {
      procs.push(
        await startHostProcess([
          `--port=${port}`,
          `--sandbox=${dir.path}`,
          `--id=hostAtPort${port}`,
          PEERS,
          `--peerSecretFile=${secretFile}`,
          '--isAuthorizationEnabled',
          `--adminUser=${ADMIN}`,
          '--adminPassword=e2e-admin-pw',
        ]),
      );
    }
    const [c0, c1, c2] = clients as [Client, Client, Client];
    await waitFor(
      'group available',
      async () => {
        for (const c of clients)
          if ((await c.send('GET', '/core/node-groups/default/available', undefined, member)).status !== 200) return false;
        return true;
      },
      30_000,
    );

    // 1. Non-members are refused on peer endpoints; members are served.
    const batch = encodeBatch({ from: 'intruder', records: [] });
    const rpl = await c0.send('POST', '/core/node-selectors/default/replication', batch, { 'content-type': REPLICATION_CONTENT_TYPE });
    assert.is(rpl.status, 403);
    assert.is(rpl.body.statusCode, 403);
    const pragma = await c1.send('PATCH', '/core/examples/anything', { name: 'x', documentVersion: 5 }, { pragma: 'xn-rpl' });
    assert.is(pragma.status, 403);
    assert.match(String(pragma.body.message), /members of the node group only/);
    assert.is(
      (await c0.send('POST', '/core/node-selectors/default/replication', batch, { 'content-type': REPLICATION_CONTENT_TYPE, ...member }))
        .status,
      200,
    );

    // The admin exists once the group is available; it sets up a read-only user.
    const admin = await waitFor(
      'admin login',
      async () => {
        const r = await c0.send('POST', '/core/authn/basic', { requestType: 'LOGIN' }, { authorization: basic(ADMIN, 'e2e-admin-pw') });
        return r.status === 200 ? (r.headers['x-xenon-auth-token'] as string) : undefined;
      },
      30_000,
    );
    for (const id of ['e1', 'e2', 'e3'])
      assert.is((await c0.send('POST', '/core/examples', { documentSelfLink: id, name: id }, as(admin))).status, 200);
    assert.is(
      (await c1.send('POST', '/core/authz/users', { documentSelfLink: 'viewer', email: 'viewer@localhost' }, as(admin))).status,
      200,
    );
    assert.is(
      (await c2.send('POST', '/core/auth/credentials', { userEmail: 'viewer@localhost', privateKey: 'viewer-pw' }, as(admin))).status,
      200,
    );
    assert.is(
      (
        await c0.send(
          'POST',
          '/core/authz/roles',
          { userLinks: ['/core/authz/users/viewer'], pathPrefixes: ['/core/examples'], verbs: ['GET'], policy: 'ALLOW' },
          as(admin),
        )
      ).status,
      200,
    );

    // 2. A read-only role: GET on every host (forwarded to each owner with the token), no PATCH.
    const login = await c1.send(
      'POST',
      '/core/authn/basic',
      { requestType: 'LOGIN' },
      { authorization: basic('viewer@localhost', 'viewer-pw') },
    );
    assert.is(login.status, 200, login.text);
    const viewer = login.headers['x-xenon-auth-token'] as string;
    for (const c of clients) {
      for (const id of ['e1', 'e2', 'e3']) {
        const get = await c.send('GET', `/core/examples/${id}`, undefined, as(viewer));
        assert.is(get.status, 200, `${c.base} ${id}: ${get.text}`);
        const patch = await c.send('PATCH', `/core/examples/${id}`, { name: 'changed' }, as(viewer));
        assert.is(patch.status, 403, `${c.base} ${id}: ${patch.text}`);
        assert.is(patch.body.message, 'forbidden');
      }
    }

    // 3. No token: 403 for reads and writes alike.
    for (const c of clients) {
      assert.is((await c.get('/core/examples/e1')).status, 403);
      assert.is((await c.post('/core/examples', { name: 'anonymous' })).status, 403);
      assert.is((await c.patch('/core/examples/e1', { name: 'anonymous' })).status, 403);
    }
    assert.is((await c2.send('GET', '/core/examples/e1', undefined, as(admin))).body.name, 'e1');
  } finally {
    for (const c of clients) await c.close();
    for (const p of procs) await p.kill('SIGKILL');
    await dir.remove();
  }
});

test('authorization with peers and no peer secret is refused at start (exit 2, one line)', async () => {
  const p = runKrypton(['host', '--port=0', '--isAuthorizationEnabled', PEERS]);
  try {
    assert.is(await p.exited, 2);
    assert.match(p.output(), /--isAuthorizationEnabled with --peerNodes needs --peerSecret or --peerSecretFile/);
  } finally {
    p.child.kill('SIGKILL');
  }
});

test.run();
