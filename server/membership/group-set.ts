/**
 * Every node group on this host (groups.ts runs each one): the default group, started with the
 * host's --peerNodes and quorum, the custom groups created by POST /core/node-groups or restored
 * from their snapshots, the maintenance timer that ticks them all, and their leave and stop.
 */

import path from 'node:path';
import fs from 'fs-extra';
import { KryptonError } from '../../lib/errors.js';
import { limits, msFromMicros } from '../../lib/limits.js';
import {
  DEFAULT_GROUP_LINK,
  groupReferenceOf,
  NODE_GROUPS_FACTORY_LINK,
  parseNodeGroupCreateRequest,
  type NodeGroupState,
} from '../../lib/group/types.js';
import { GroupRuntime, type GroupDeps } from './groups.js';

/** Every node group on this host, the default one first. */
export class Groups {
  private readonly groups = new Map<string, GroupRuntime>();
  private timer: NodeJS.Timeout | undefined;

  constructor(private readonly d: GroupDeps) {}

  get default(): GroupRuntime {
    return this.groups.get(DEFAULT_GROUP_LINK)!;
  }

  get(link: string): GroupRuntime | undefined {
    return this.groups.get(link);
  }

  links(): string[] {
    return [...this.groups.keys()];
  }

  /** Starts the default group and every custom group whose snapshot is in the sandbox. */
  async start(opts: { membershipQuorum?: number; peerNodes: string[] }): Promise<void> {
    const selfOrigin = new URL(this.d.publicUri).origin;
    const others = opts.peerNodes.filter((p) => new URL(p).origin !== selfOrigin);
    const def = new GroupRuntime(DEFAULT_GROUP_LINK, this.d, { membershipQuorum: opts.membershipQuorum, peerNodeCount: others.length });
    this.groups.set(DEFAULT_GROUP_LINK, def);
    await def.restore();
    const dir = path.join(this.d.dir, 'node-groups');
    for (const f of (await fs.pathExists(dir)) ? await fs.readdir(dir) : []) {
      const m = /^(.+)\.json$/.exec(f);
      if (!m || m[1] === 'default') continue;
      const g = new GroupRuntime(`${NODE_GROUPS_FACTORY_LINK}/${m[1]}`, this.d, {});
      this.groups.set(g.link, g);
      await g.restore();
    }
    // A lone host becomes available on its first tick; do not make it wait a whole interval.
    for (const g of this.groups.values()) await g.tick();
    this.timer = setInterval(() => {
      for (const g of this.groups.values()) void g.tick();
    }, msFromMicros(limits.maintenanceIntervalMicros));
    this.timer.unref();
    // Xenon joins one maintenance interval after start; this host is ready once it listens, so
    // it joins at once (through every listed peer) and a restarted host starts its stability
    // window, and so its catch-up, a second earlier. A peer not up yet is retried every round.
    if (opts.peerNodes.length) {
      for (const p of opts.peerNodes) void def.join(groupReferenceOf(p, DEFAULT_GROUP_LINK), opts.membershipQuorum);
    }
  }

  /** POST /core/node-groups: a custom group on this host. */
  async create(raw: unknown): Promise<NodeGroupState> {
    const req = parseNodeGroupCreateRequest(raw, this.d.selfId);
    if (this.groups.has(req.groupLink)) throw new KryptonError('ALREADY_EXISTS', `Service already started: ${req.groupLink}`);
    const g = new GroupRuntime(req.groupLink, this.d, { options: req.localNodeOptions, config: req.config });
    this.groups.set(req.groupLink, g);
    await g.tick();
    return g.group;
  }

  /** Every group tells its peers this host is leaving; bounded by the leave deadline. */
  async leave(): Promise<void> {
    await Promise.all([...this.groups.values()].map((g) => g.leave()));
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await Promise.all([...this.groups.values()].map((g) => g.stop()));
  }
}
