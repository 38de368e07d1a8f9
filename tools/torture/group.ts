/**
 * The group under test: 3 (or more) real `krypton host` processes, each either on loopback with
 * a free port or, for partitions, inside its own network namespace (netns.ts). This file owns
 * their lives (start, kill -9, SIGSTOP/SIGCONT, graceful stop), their logs (one file per host,
 * appended across restarts), and the waits on the group's state: every live host sees every
 * live host AVAILABLE, the group is available and no synchronization is running.
 */

import type { AnswerBody } from './client.js';
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { Agent, request } from 'undici';
import { freePorts, track } from '../bench/etcd.js';
import { inNs, type Namespaces } from './netns.js';

const KRYPTON = process.env.KRYPTON_BIN
  ? path.resolve(process.env.KRYPTON_BIN)
  : path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../dist/tools/krypton.js');
/** A graceful stop finishes in about 2 s when it works; one still running after this never ended. */
export const STOP_DEADLINE_MS = 10_000;
/** Inside a namespace each host has the whole port space to itself. */
const NS_PORT = 7000;

export type HostState = 'up' | 'down' | 'paused';

export class Host {
  proc: ChildProcess | undefined;
  state: HostState = 'down';
  starts = 0;
  private exited: Promise<void> = Promise.resolve();

  constructor(
    readonly index: number,
    readonly id: string,
    readonly url: string,
    private readonly argv: () => string[],
    readonly logFile: string,
  ) {}

  /** Spawns the host and waits until it listens (deadline), as a user's restart would. */
  async start(deadlineMs = 30_000): Promise<void> {
    if (this.proc) throw new Error(`${this.id} is already running`);
    const argv = this.argv();
    const log = fs.openSync(this.logFile, 'a');
    fs.writeSync(log, `\n==== start ${++this.starts} at ${new Date().toISOString()}: ${argv.join(' ')}\n`);
    const child = track(spawn(argv[0]!, argv.slice(1), { stdio: ['ignore', 'pipe', 'pipe'] }));
    fs.closeSync(log);
    this.proc = child;
    this.state = 'up';
    const out = fs.createWriteStream(this.logFile, { flags: 'a' });
    let seen = '';
    const listening = new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`${this.id} did not listen in ${deadlineMs} ms (see ${this.logFile})`)), deadlineMs);
      const onData = (b: Buffer) => {
        out.write(b);
        if (seen.length < 65_536) seen += b.toString();
        if (/listening on /.test(seen)) {
          clearTimeout(timer);
          resolve();
        }
      };
      child.stdout!.on('data', onData);
      child.stderr!.on('data', (b: Buffer) => out.write(b));
      child.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`${this.id} exited (${code ?? sig}) before listening (see ${this.logFile})`));
      });
    });
    this.exited = new Promise<void>((r) =>
      child.once('exit', () => {
        out.end();
        if (this.proc === child) {
          this.proc = undefined;
          this.state = 'down';
        }
        r();
      }),
    );
    await listening;
  }

  private signal(sig: NodeJS.Signals): void {
    if (this.proc && this.proc.exitCode === null && this.proc.signalCode === null) this.proc.kill(sig);
  }

  async kill(): Promise<void> {
    this.signal('SIGKILL');
    await this.exited;
  }

  /**
   * SIGTERM (accepted writes finish, the log is closed); SIGKILL if it is not gone by the
   * deadline. Answers whether it exited by itself.
   */
  async stop(deadlineMs = STOP_DEADLINE_MS): Promise<boolean> {
    if (this.state === 'paused') this.resume();
    this.signal('SIGTERM');
    let forced = false;
    const timer = setTimeout(() => {
      forced = true;
      this.signal('SIGKILL');
    }, deadlineMs);
    await this.exited;
    clearTimeout(timer);
    return !forced;
  }

  pause(): void {
    this.signal('SIGSTOP');
    if (this.proc) this.state = 'paused';
  }

  resume(): void {
    this.signal('SIGCONT');
    if (this.proc) this.state = 'up';
  }
}

async function getJson(agent: Agent, url: string): Promise<{ status: number; body: AnswerBody } | undefined> {
  try {
    const r = await request(url, { dispatcher: agent, headersTimeout: 2000, bodyTimeout: 2000 });
    const text = await r.body.text();
    return { status: r.statusCode, body: text ? JSON.parse(text) : undefined };
  } catch {
    return undefined;
  }
}

export class Group {
  readonly hosts: Host[] = [];
  private readonly agent = new Agent({ keepAliveTimeout: 1000 });

  private constructor(
    readonly sandbox: string,
    readonly logDir: string,
    readonly ns: Namespaces | undefined,
  ) {}

  /** Starts `n` hosts with the same peer list and waits for the group to converge. */
  static async start(opts: { n: number; sandbox: string; logDir: string; ns?: Namespaces; hostArgs?: string[] }): Promise<Group> {
    const g = new Group(opts.sandbox, opts.logDir, opts.ns);
    fs.mkdirSync(opts.logDir, { recursive: true });
    const ports = opts.ns ? Array(opts.n).fill(NS_PORT) : await freePorts(opts.n);
    const addr = (i: number) => (opts.ns ? opts.ns.addr(i) : '127.0.0.1');
    const urls = ports.map((p, i) => `http://${addr(i)}:${p}`);
    for (let i = 0; i < opts.n; i++) {
      const id = `host${i}`;
      const argv = () => {
        const host = [
          process.execPath,
          KRYPTON,
          'host',
          `--port=${ports[i]}`,
          `--bindAddress=${addr(i)}`,
          // Each host its own sandbox: inside namespaces all share one port number.
          `--sandbox=${path.join(opts.sandbox, id)}`,
          `--id=${id}`,
          `--peerNodes=${urls.join(',')}`,
          ...(opts.hostArgs ?? []),
        ];
        return opts.ns ? inNs(opts.ns.hosts[i]!, host) : host;
      };
      g.hosts.push(new Host(i, id, urls[i]!, argv, path.join(opts.logDir, `${id}.log`)));
    }
    try {
      await Promise.all(g.hosts.map((h) => h.start()));
      await g.waitConverged(60_000);
    } catch (e) {
      await g.close();
      throw e;
    }
    return g;
  }

  /** Every up host lists every up host AVAILABLE (and those only), answers available, and no synchronization runs or is owed. */
  async converged(): Promise<boolean> {
    const up = this.hosts.filter((h) => h.state === 'up');
    for (const h of up) {
      const g = await getJson(this.agent, `${h.url}/core/node-groups/default`);
      const nodes = Object.values((g?.body?.nodes ?? {}) as Record<string, { id: string; status: string }>);
      const available = new Set(nodes.filter((x) => x.status === 'AVAILABLE').map((x) => x.id));
      if (available.size !== up.length || up.some((u) => !available.has(u.id))) return false;
      if ((await getJson(this.agent, `${h.url}/core/node-groups/default/available`))?.status !== 200) return false;
      const m = await getJson(this.agent, `${h.url}/core/management`);
      // No pass running, nor one still owed after the last change: copies are compared once synchronized.
      if (m?.status !== 200 || m.body?.synchStats?.running || m.body?.synchStats?.passPending) return false;
    }
    return true;
  }

  /** Whether every other live host lists host `i` as anything but AVAILABLE. */
  async seenDown(i: number): Promise<boolean> {
    const target = this.hosts[i]!;
    for (const h of this.hosts) {
      if (h === target || h.state !== 'up') continue;
      const g = await getJson(this.agent, `${h.url}/core/node-groups/default`);
      const nodes = Object.values((g?.body?.nodes ?? {}) as Record<string, { id: string; status: string }>);
      if (nodes.some((x) => x.id === target.id && x.status === 'AVAILABLE')) return false;
    }
    return true;
  }

  /** Waits for convergence; answers the milliseconds it took, or undefined past the deadline. */
  async waitConverged(deadlineMs: number): Promise<number | undefined> {
    const t0 = performance.now();
    const end = Date.now() + deadlineMs;
    while (Date.now() < end) {
      if (await this.converged()) return performance.now() - t0;
      await new Promise((r) => setTimeout(r, 100));
    }
    return undefined;
  }

  async close(): Promise<void> {
    await Promise.all(this.hosts.map((h) => h.kill()));
    await this.agent.close();
  }
}
