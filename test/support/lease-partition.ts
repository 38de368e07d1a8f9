/**
 * The scenario of test/e2e/lease.test.ts that needs a partition, run inside the bridge namespace
 * the test made (tools/torture/netns.ts), so its requests reach hosts inside their own namespaces.
 * Three hosts, quorum 2. The owner of a document is cut off from both peers and frozen (SIGSTOP)
 * at once, so it learns nothing; the two others take the document over and write to it. The owner
 * is then resumed, still cut off, and a client that still reaches it reads the document at once:
 * its view of the group is the one it was frozen with, so only its lease stops it from answering
 * its old copy. Prints one JSON line: what that read answered, and the majority's write.
 *
 * Usage (as root, inside the bridge namespace): node --import tsx test/support/lease-partition.ts
 * --prefix=<namespaces prefix> --dir=<scratch folder>
 */

import path from 'node:path';
import { request } from 'undici';
import { Group } from '../../tools/torture/group.js';
import { cut, healAll, namespacesFor } from '../../tools/torture/netns.js';

interface Answer {
  status: number;
  body: { name?: string; documentVersion?: number; message?: string } | undefined;
}

async function call(method: string, url: string, body?: unknown, timeoutMs = 30_000): Promise<Answer> {
  const r = await request(url, {
    method: method as 'GET',
    headers: { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const text = await r.body.text();
  let parsed: Answer['body'];
  try {
    parsed = text ? (JSON.parse(text) as Answer['body']) : undefined;
  } catch {
    parsed = { message: text };
  }
  return { status: r.statusCode, body: parsed };
}

async function main(): Promise<void> {
  const arg = (name: string) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
  const prefix = arg('prefix');
  const dir = arg('dir');
  if (!prefix || !dir) throw new Error('usage: lease-partition.ts --prefix=<namespaces> --dir=<folder>');
  const ns = namespacesFor(prefix, 3);
  const group = await Group.start({
    n: 3,
    sandbox: path.join(dir, 'sandbox'),
    logDir: path.join(dir, 'logs'),
    ns,
    // A read that cannot get a lease fails at the operation timeout: shorter than 60 s for a test.
    hostArgs: ['--membershipQuorum=2', '--operationTimeoutMicros=8000000'],
  });
  try {
    const [a, , owner] = group.hosts as [(typeof group.hosts)[0], (typeof group.hosts)[0], (typeof group.hosts)[0]];
    let link = '';
    for (let i = 0; link === ''; i++) {
      const r = await call('POST', `${a.url}/core/node-selectors/default`, { key: `/core/examples/cut-${i}` });
      if ((r.body as { ownerNodeId?: string } | undefined)?.ownerNodeId === owner.id) link = `/core/examples/cut-${i}`;
    }
    const created = await call('POST', `${a.url}/core/examples`, { documentSelfLink: link.split('/').pop(), name: 'before' });
    if (created.status !== 200) throw new Error(`create answered ${created.status}`);
    const first = await call('GET', `${owner.url}${link}`);
    if (first.body?.name !== 'before') throw new Error(`the owner answered ${JSON.stringify(first)}`);

    cut(ns, owner.index, [0, 1]);
    owner.pause();
    const t0 = Date.now();
    let after: Answer = { status: 0, body: undefined };
    while (after.status !== 200) {
      if (Date.now() - t0 > 40_000) throw new Error(`no write through the majority in 40 s: ${JSON.stringify(after)}`);
      after = await call('PATCH', `${a.url}${link}`, { name: 'after' }).catch(() => after);
    }
    owner.resume();
    const read = await call('GET', `${owner.url}${link}`, undefined, 20_000).catch((e: Error) => ({
      status: 0,
      body: { message: e.message },
    }));
    console.log(JSON.stringify({ read, after: { status: after.status, version: after.body?.documentVersion } }));
    healAll(ns);
  } finally {
    await group.close();
  }
}

main().then(
  () => process.exit(0),
  (e: unknown) => {
    console.error(e instanceof Error ? e.stack : String(e));
    process.exit(1);
  },
);
