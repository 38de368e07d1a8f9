/**
 * A service registry, the Krypton way (seed 003's ephemeral znodes): each worker registers
 * itself as an expiring document and keeps refreshing its expiration; a worker that dies stops
 * refreshing, so its document expires and drops out of every listing, and watchers of the
 * factory get an `expired` event once the hosts purge it. Clients list the live workers with a
 * factory GET and watch them with the factory's event stream.
 *
 * ZooKeeper → Krypton: ephemeral znode → document with documentExpirationTimeMicros refreshed
 * by its owner process; session timeout → the ttl; getChildren + watch → factory GET +
 * `<factory>/subscriptions/stream`; sequential znode → documentVersion / documentEpoch.
 */

import { request } from 'undici';

const JSON_HEADERS = { 'content-type': 'application/json' };

export class Registration {
  private timer: NodeJS.Timeout | undefined;
  readonly link: string;

  constructor(
    readonly hostUrl: string,
    readonly factory: string,
    readonly name: string,
    readonly ttlMs: number,
  ) {
    this.link = `${factory}/${name}`;
  }

  private expiry(): number {
    return (Date.now() + this.ttlMs) * 1000;
  }

  /** Registers (or re-registers) and refreshes every third of the ttl until `stop`. */
  async start(): Promise<void> {
    const r = await request(`${this.hostUrl}${this.factory}`, {
      method: 'POST',
      headers: JSON_HEADERS,
      body: JSON.stringify({ documentSelfLink: this.name, name: this.name, documentExpirationTimeMicros: this.expiry() }),
    });
    await r.body.dump();
    // 409: a registration of ours from before a restart is still live; refreshing it is enough.
    if (r.statusCode !== 200 && r.statusCode !== 409) throw new Error(`registering ${this.link}: ${r.statusCode}`);
    if (r.statusCode === 409) await this.refresh();
    this.timer = setInterval(() => void this.refresh().catch(() => undefined), Math.max(50, Math.floor(this.ttlMs / 3)));
  }

  async refresh(): Promise<void> {
    const r = await request(`${this.hostUrl}${this.link}`, {
      method: 'PATCH',
      headers: JSON_HEADERS,
      body: JSON.stringify({ name: this.name, documentExpirationTimeMicros: this.expiry() }),
    });
    await r.body.dump();
    if (r.statusCode !== 200) throw new Error(`refreshing ${this.link}: ${r.statusCode}`);
  }

  /** What a crash does: refreshing stops and the document is left to expire. */
  stop(): void {
    if (this.timer) clearInterval(this.timer);
  }
}

/** The live registrations under `factory`, as seen by one host. */
export async function liveServices(hostUrl: string, factory: string): Promise<string[]> {
  const r = await request(`${hostUrl}${factory}`);
  const body = (await r.body.json()) as { documentLinks: string[] };
  return [...body.documentLinks].sort();
}
