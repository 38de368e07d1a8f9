/**
 * The client's view of a node group: the members it learned from a host's
 * `GET /core/node-groups/default`, the owner of a link by the selection the hosts make
 * (lib/group/selector.ts, Xenon's FNV64 over the same view), and the hosts that failed lately,
 * which are skipped for a while. The view is refreshed by the client when it is old or a request
 * fails; between refreshes the hosts route whatever the client sends to a wrong host.
 */

import { ownerOf } from '../lib/group/selector.js';
import { isEligibleOwner } from '../lib/group/rules.js';
import { DEFAULT_GROUP_LINK, parseNodeGroupState, type NodeGroupState } from '../lib/group/types.js';

/** How long a host that failed is skipped when another can be asked. */
const SUSPECT_MS = 2000;

export function originOf(uri: string): string {
  return new URL(uri).origin;
}

export class GroupView {
  private group: NodeGroupState | undefined;
  /** Origins by node id, from each member's group reference. */
  private origins = new Map<string, string>();
  private readonly suspects = new Map<string, number>();
  private readonly seeds: string[];
  private next = 0;
  /** Monotonic time (ms) of the last refresh. */
  refreshedAt = Number.NEGATIVE_INFINITY;

  constructor(seeds: readonly string[]) {
    this.seeds = [...new Set(seeds.map(originOf))];
  }

  /** Takes a group state a host answered; throws KryptonError INVALID_BODY when it is not one. */
  learn(raw: unknown, nowMs: number): void {
    const g = parseNodeGroupState(raw, DEFAULT_GROUP_LINK);
    this.group = g;
    this.origins = new Map(Object.values(g.nodes).map((n) => [n.id, originOf(n.groupReference)]));
    this.refreshedAt = nowMs;
  }

  get membership(): NodeGroupState | undefined {
    return this.group;
  }

  /** Every host worth asking: the members that can own documents, else the seeds. */
  hosts(): string[] {
    const g = this.group;
    const members = g
      ? Object.values(g.nodes)
          .filter(isEligibleOwner)
          .map((n) => this.origins.get(n.id)!)
      : [];
    return members.length > 0 ? members : this.seeds;
  }

  /** The owner's origin for `link`, or undefined when the view cannot say (no view, no eligible member). */
  owner(link: string, nowMs: number): string | undefined {
    const g = this.group;
    if (!g) return undefined;
    try {
      const origin = this.origins.get(ownerOf(g, link).id);
      return origin !== undefined && !this.isSuspect(origin, nowMs) ? origin : undefined;
    } catch {
      return undefined;
    }
  }

  /** The id of the member the view says owns `link`, whether or not it is suspect. */
  ownerId(link: string): string | undefined {
    const g = this.group;
    if (!g) return undefined;
    try {
      return ownerOf(g, link).id;
    } catch {
      return undefined;
    }
  }

  /** Some host to ask, round robin over the healthy ones; `avoid` is skipped when another exists. */
  any(nowMs: number, avoid?: string): string {
    const all = [...new Set([...this.hosts(), ...this.seeds])];
    const healthy = all.filter((o) => o !== avoid && !this.isSuspect(o, nowMs));
    const pool = healthy.length > 0 ? healthy : all.filter((o) => o !== avoid).length > 0 ? all.filter((o) => o !== avoid) : all;
    const pick = pool[this.next++ % pool.length]!;
    return pick;
  }

  suspect(origin: string, nowMs: number): void {
    this.suspects.set(origin, nowMs + SUSPECT_MS);
  }

  private isSuspect(origin: string, nowMs: number): boolean {
    const until = this.suspects.get(origin);
    if (until === undefined) return false;
    if (until <= nowMs) {
      this.suspects.delete(origin);
      return false;
    }
    return true;
  }
}
