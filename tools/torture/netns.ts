/**
 * Network namespaces for the partition faults (Linux, root): one namespace per host and one for
 * the bridge that joins them through veth pairs; the runner's clients live in the bridge's
 * namespace, so every packet stays inside namespaces made here and the machine's own network is
 * never touched. A link is cut with nftables rules inside the hosts' namespaces (drop, so
 * connections hang as they do on a real network, not refused at once). `teardown` kills what is
 * still running inside the namespaces (processes this run started) and deletes them.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import fs from 'node:fs';

/** The hosts' subnet exists only inside this run's namespaces, so a fixed one cannot collide. */
const SUBNET = '10.77.0';
const TABLE = 'krypton_torture';

export interface Namespaces {
  prefix: string;
  bridge: string;
  hosts: string[];
  /** Address of host i (inside its namespace). */
  addr(i: number): string;
}

/** Why partitions cannot run here, or undefined when they can. */
export function partitionsUnsupported(): string | undefined {
  if (process.platform !== 'linux') return `network partitions need Linux network namespaces (this is ${process.platform})`;
  if (process.getuid?.() !== 0) return 'network partitions need root (network namespaces and nftables): run as root to include them';
  for (const tool of ['ip', 'nft']) {
    if (spawnSync(tool, ['-V'], { stdio: 'ignore' }).error) return `network partitions need '${tool}' (run tools/torture/setup.sh)`;
  }
  return undefined;
}

function run(args: string[], input?: string): void {
  const r = spawnSync(args[0]!, args.slice(1), { input, encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`${args.join(' ')} failed (${r.status}): ${r.stderr || r.error?.message}`);
}

export const inNs = (ns: string, argv: string[]) => ['ip', 'netns', 'exec', ns, ...argv];

export function namespacesFor(prefix: string, hosts: number): Namespaces {
  return {
    prefix,
    bridge: `${prefix}b`,
    hosts: Array.from({ length: hosts }, (_, i) => `${prefix}h${i}`),
    addr: (i) => `${SUBNET}.${i + 1}`,
  };
}

/** The bridge namespace's own address on the bridge: where the clients' requests come from. */
export const CLIENT_ADDR = `${SUBNET}.254`;

export function setupNamespaces(prefix: string, hosts: number): Namespaces {
  const ns = namespacesFor(prefix, hosts);
  try {
    run(['ip', 'netns', 'add', ns.bridge]);
    run(['ip', '-n', ns.bridge, 'link', 'set', 'lo', 'up']);
    run(['ip', '-n', ns.bridge, 'link', 'add', 'br0', 'type', 'bridge']);
    run(['ip', '-n', ns.bridge, 'addr', 'add', `${CLIENT_ADDR}/24`, 'dev', 'br0']);
    run(['ip', '-n', ns.bridge, 'link', 'set', 'br0', 'up']);
    ns.hosts.forEach((h, i) => {
      run(['ip', 'netns', 'add', h]);
      run(['ip', '-n', h, 'link', 'set', 'lo', 'up']);
      run(['ip', '-n', ns.bridge, 'link', 'add', `v${i}`, 'type', 'veth', 'peer', 'name', 'eth0', 'netns', h]);
      run(['ip', '-n', ns.bridge, 'link', 'set', `v${i}`, 'master', 'br0', 'up']);
      run(['ip', '-n', h, 'addr', 'add', `${ns.addr(i)}/24`, 'dev', 'eth0']);
      run(['ip', '-n', h, 'link', 'set', 'eth0', 'up']);
      run(
        inNs(h, ['nft', '-f', '-']),
        `table inet ${TABLE} {\n chain in { type filter hook input priority 0; policy accept; }\n chain out { type filter hook output priority 0; policy accept; }\n}\n`,
      );
    });
  } catch (e) {
    teardownNamespaces(ns);
    throw e;
  }
  return ns;
}

/** Drops every packet between host i and each of `peers` (both directions, in i's namespace). */
export function cut(ns: Namespaces, i: number, peers: number[]): void {
  const rules = peers
    .map((p) => `add rule inet ${TABLE} in ip saddr ${ns.addr(p)} drop\nadd rule inet ${TABLE} out ip daddr ${ns.addr(p)} drop\n`)
    .join('');
  run(inNs(ns.hosts[i]!, ['nft', '-f', '-']), rules);
}

export function healAll(ns: Namespaces): void {
  for (const h of ns.hosts) run(inNs(h, ['nft', '-f', '-']), `flush chain inet ${TABLE} in\nflush chain inet ${TABLE} out\n`);
}

/** Processes still inside a namespace: started by this run (hosts), killed before it goes. */
function pidsIn(ns: string): number[] {
  try {
    return execFileSync('ip', ['netns', 'pids', ns], { encoding: 'utf8' }).split('\n').filter(Boolean).map(Number);
  } catch {
    return [];
  }
}

/** Kills this run's leftovers inside its namespaces and deletes them; safe to call twice. */
export function teardownNamespaces(ns: Namespaces): void {
  for (const name of [...ns.hosts, ns.bridge]) {
    if (!fs.existsSync(`/run/netns/${name}`)) continue;
    for (const pid of pidsIn(name)) {
      if (pid === process.pid) continue;
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    spawnSync('ip', ['netns', 'del', name], { stdio: 'ignore' });
  }
}
