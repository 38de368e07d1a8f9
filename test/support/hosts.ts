/**
 * In-process hosts for integration tests: each on an ephemeral port with its own temporary
 * sandbox, silent on stdout. `restart` stops a host and starts a new one on the same sandbox
 * folder, as an operator would after a clean stop.
 */

import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { defaultConfig, type Config } from '../../server/config.js';
import { Host, type HostOptions } from '../../server/host.js';
import { Client } from './http.js';

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
      return startHost(overrides, dir, options);
    },
    async close() {
      await client.close();
      await host.stop();
      if (!sandbox) await fs.rm(dir, { recursive: true, force: true });
    },
  };
  return th;
}
