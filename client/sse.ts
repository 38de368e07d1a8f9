/**
 * Server-sent events as the hosts write them (`GET <link>/subscriptions/stream`): frames of
 * `id:`, `event:` and `data:` lines ended by a blank line, `:` comments (the hosts' pings)
 * skipped. The parser only splits text; what the events mean is the watch's (client.ts).
 */

export interface SseFrame {
  id: string | undefined;
  event: string;
  data: string;
}

/** Frames from a byte stream, as they complete; a frame cut off by the end of the stream is dropped. */
export async function* sseFrames(body: AsyncIterable<Buffer>): AsyncGenerator<SseFrame> {
  const decoder = new TextDecoder();
  let buffered = '';
  let frame: { id?: string; event?: string; data: string[] } = { data: [] };
  for await (const chunk of body) {
    buffered += decoder.decode(chunk, { stream: true });
    let nl = buffered.indexOf('\n');
    while (nl >= 0) {
      const line = buffered.slice(0, nl).replace(/\r$/, '');
      buffered = buffered.slice(nl + 1);
      nl = buffered.indexOf('\n');
      if (line === '') {
        if (frame.data.length > 0 || frame.event !== undefined) {
          yield { id: frame.id, event: frame.event ?? 'message', data: frame.data.join('\n') };
        }
        frame = { data: [] };
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'id') frame.id = value;
      else if (field === 'event') frame.event = value;
      else if (field === 'data') frame.data.push(value);
    }
  }
}
