/**
 * In-process hosts for integration tests: each on an ephemeral port with its own temporary
 * sandbox, silent on stdout. `restart` stops a host and starts a new one on the same sandbox
 * folder, as an operator would after a clean stop.
 */

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defaultConfig, type Config } from '../../server/base/config.js';
import { Host, type HostOptions } from '../../server/host/host.js';
import { KINDS } from '../../lib/document.js';
import { Client } from './http.js';
import { waitFor } from './wait.js';

export interface TestHost {
  host: Host;
  client: Client;
  sandbox: string;
  restart(): Promise<TestHost>;
  close(): Promise<void>;
}

export async function tempDir(prefix = 'krypton-test-'): Promise<{ path: string; remove(): Promise<void> }> {
  const p = await fs.mkdtemp(path.join(os.tmpdir(), prefix));
  return { path: p, remove: () => fs.rm(p, { recursive: true, force: true }) };
}

export async function startHost(overrides: Partial<Config> = {}, sandbox?: string, options: HostOptions = {}): Promise<TestHost> {
  return start(overrides, sandbox, options, sandbox === undefined);
}

/** `ownsDir`: the sandbox was made here, so close() removes it, after any number of restarts. */
async function start(overrides: Partial<Config>, sandbox: string | undefined, options: HostOptions, ownsDir: boolean): Promise<TestHost> {
  const dir = sandbox ?? (await fs.mkdtemp(path.join(os.tmpdir(), 'krypton-host-')));
  const config: Config = { ...defaultConfig(), port: 0, sandbox: dir, logLevel: 'silent', ...overrides };
  const host = await Host.start(config, options);
  // An https:// host is called with the CA it was given, as a user with the right trust store would.
  const client = new Client(host.uri, config.caFile ? { ca: await fs.readFile(config.caFile, 'utf8') } : undefined);
  const th: TestHost = {
    host,
    client,
    sandbox: dir,
    async restart() {
      await client.close();
      await host.stop();
      return start(overrides, dir, options, ownsDir);
    },
    async close() {
      await client.close();
      await host.stop();
      if (ownsDir) await fs.rm(dir, { recursive: true, force: true });
    },
  };
  return th;
}

/**
 * Joins `hosts` into one group through the first with JoinPeerRequest (sending `headers`, the
 * peer secret say, with every request) and waits until each lists all of them AVAILABLE and
 * reports the group available.
 */
export async function joinAll(hosts: TestHost[], headers: Record<string, string> = {}, deadlineMs = 30_000): Promise<void> {
  const link = '/core/node-groups/default';
  for (const h of hosts.slice(1)) {
    const r = await h.client.send(
      'POST',
      link,
      { kind: KINDS.joinPeerRequest, memberGroupReference: `${hosts[0]!.host.uri}${link}` },
      headers,
    );
    if (r.status !== 200) throw new Error(`join through ${hosts[0]!.host.uri} answered ${r.status}: ${r.text}`);
  }
  await waitFor(
    `${hosts.length} hosts available`,
    async () => {
      for (const h of hosts) {
        const g = await h.client.send<{ nodes: Record<string, { status: string }> }>('GET', link, undefined, headers);
        const nodes = Object.values(g.body?.nodes ?? {});
        if (nodes.length !== hosts.length || nodes.some((n) => n.status !== 'AVAILABLE')) return false;
        if ((await h.client.send('GET', `${link}/available`, undefined, headers)).status !== 200) return false;
      }
      return true;
    },
    deadlineMs,
  );
}

/**
 * Starts `count` hosts (host i with `configOf(i)`) and joins them with joinAll. If the group does
 * not come together, the hosts already started are closed before the error goes on.
 */
export async function startGroup(
  count: number,
  configOf: (i: number) => Partial<Config>,
  headers: Record<string, string> = {},
): Promise<TestHost[]> {
  const hosts: TestHost[] = [];
  try {
    for (let i = 0; i < count; i++) hosts.push(await startHost(configOf(i)));
    await joinAll(hosts, headers);
  } catch (e) {
    await closeAll(hosts);
    throw e;
  }
  return hosts;
}

/**
 * Hosts on the sandbox folders `dirs`, host i with `configOf(i)` (fixed ports, so a host restarted
 * later comes back at the address its peers know), the others joined through the first. Does not
 * wait: follow with groupAvailable. The hosts started so far go into `into`, for the caller's
 * finally to close.
 */
export async function startJoined(dirs: string[], configOf: (i: number) => Partial<Config>, into: TestHost[]): Promise<TestHost[]> {
  for (let i = 0; i < dirs.length; i++) into.push(await startHost(configOf(i), dirs[i]));
  for (const h of into.slice(1))
    await h.client.post('/core/node-groups/default', {
      kind: KINDS.joinPeerRequest,
      memberGroupReference: `${into[0]!.host.uri}/core/node-groups/default`,
    });
  return into;
}

/** Waits until every host answers 200 for the group's /available. */
export async function groupAvailable(hosts: readonly TestHost[], deadlineMs = 20_000): Promise<void> {
  await waitFor(
    'group available',
    async () => {
      for (const h of hosts) if ((await h.client.get('/core/node-groups/default/available')).status !== 200) return false;
      return true;
    },
    deadlineMs,
  );
}

export async function closeAll(hosts: readonly TestHost[] | undefined): Promise<void> {
  for (const h of hosts ?? []) await h.close();
}
