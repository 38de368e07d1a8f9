/**
 * Leader election, the Krypton way: the leader of a group of workers is the owner of a
 * well-known link. Each worker runs next to one host and asks that host, every `intervalMs`,
 * whether it owns the link while its node selector is AVAILABLE (the group has its quorum and
 * membership is settled). Every host computes the same owner from the same membership, and a host
 * that lost its quorum is not AVAILABLE, so at most one worker leads; when the leader's host dies
 * the others agree on the next owner once failure detection has marked it UNAVAILABLE.
 * Work that must never run twice belongs in a task service, whose stages run on the owner only.
 *
 *   node --import tsx tools/recipes/leader.ts http://127.0.0.1:8000 /core/examples/leader
 */

import { whoOwns } from '../owner.js';

export class LeaderWorker {
  private timer: NodeJS.Timeout | undefined;
  private polling = false;
  leader = false;

  constructor(
    readonly hostUrl: string,
    readonly link: string,
    private readonly onChange: (leader: boolean) => void = () => undefined,
    readonly intervalMs = 250,
  ) {}

  /** One poll: leader iff the host's selector is AVAILABLE and the host owns the link. */
  async check(): Promise<boolean> {
    let now = false;
    try {
      const a = await whoOwns(this.hostUrl, this.link, 'default', Math.max(1000, this.intervalMs * 4));
      now = a.status === 'AVAILABLE' && a.isLocalHostOwner;
    } catch {
      now = false; // our host cannot answer: we cannot know we lead, so we do not
    }
    if (now !== this.leader) {
      this.leader = now;
      this.onChange(now);
    }
    return now;
  }

  start(): void {
    this.timer = setInterval(() => {
      if (this.polling) return;
      this.polling = true;
      void this.check().finally(() => (this.polling = false));
    }, this.intervalMs);
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const [host, link] = process.argv.slice(2);
  if (!host || !link) {
    process.stderr.write('usage: leader.ts HOST_URL LINK\n');
    process.exit(2);
  }
  const w = new LeaderWorker(host, link, (leader) =>
    process.stdout.write(`${new Date().toISOString()} ${leader ? 'I am the leader' : 'I follow'}\n`),
  );
  w.start();
}
