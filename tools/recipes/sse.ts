/**
 * A minimal server-sent-events reader (the recipes use it, and so do the tests): connects to a Krypton stream,
 * parses `id`/`event`/`data` fields into events, and records them in arrival order.
 */

import { Agent, request } from 'undici';

export interface SseEvent {
  id?: string;
  event: string;
  data: unknown;
}

export interface SseStream {
  events: SseEvent[];
  /** Resolves when the server ends the stream or the connection breaks. */
  ended: Promise<void>;
  lastEventId(): string | undefined;
  close(): Promise<void>;
}

export async function openStream(url: string, lastEventId?: string, headers: Record<string, string> = {}): Promise<SseStream> {
  const agent = new Agent({ bodyTimeout: 0, headersTimeout: 10_000 });
  const ac = new AbortController();
  const res = await request(url, {
    dispatcher: agent,
    signal: ac.signal,
    headers: lastEventId ? { ...headers, 'last-event-id': lastEventId } : headers,
  });
  if (res.statusCode !== 200) {
    const text = await res.body.text();
    await agent.close();
    throw new Error(`stream ${url} answered ${res.statusCode}: ${text}`);
  }
  const events: SseEvent[] = [];
  let last = lastEventId;
  const ended = (async () => {
    let buf = '';
    try {
      for await (const chunk of res.body) {
        buf += (chunk as Buffer).toString('utf8');
        for (let i = buf.indexOf('\n\n'); i >= 0; i = buf.indexOf('\n\n')) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const ev: SseEvent = { event: 'message', data: undefined };
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) continue;
            const c = line.indexOf(':');
            const field = c < 0 ? line : line.slice(0, c);
            const value = c < 0 ? '' : line.slice(c + 1).replace(/^ /, '');
            if (field === 'id') ev.id = value;
            else if (field === 'event') ev.event = value;
            else if (field === 'data') data += value;
          }
          if (!data && ev.id === undefined) continue;
          ev.data = data ? JSON.parse(data) : undefined;
          if (ev.id !== undefined) last = ev.id;
          events.push(ev);
        }
      }
    } catch {
      // aborted or the host died: the caller reconnects elsewhere
    }
  })();
  return {
    events,
    ended,
    lastEventId: () => last,
    async close() {
      ac.abort();
      await ended;
      await agent.close();
    },
  };
}
