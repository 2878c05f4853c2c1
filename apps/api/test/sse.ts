// A small Server-Sent Events reader over fetch, for tests: events one at a time, with a deadline.

export interface SseEvent {
  event: string;
  id: string | undefined;
  data: string;
}

export interface SseStream {
  response: Response;
  /** The next event (comments skipped); throws when none comes within `ms` or the stream ends. */
  next(ms?: number): Promise<SseEvent>;
  /** True once the server has ended the stream (read after the last event). */
  ended(ms?: number): Promise<boolean>;
  /** Comment lines seen so far (`: …`). */
  comments: string[];
  close(): Promise<void>;
}

function parseEvent(block: string, comments: string[]): SseEvent | undefined {
  const ev: SseEvent = { event: 'message', id: undefined, data: '' };
  let fields = 0;
  for (const line of block.split('\n')) {
    if (line.startsWith(':')) {
      comments.push(line.slice(1).trim());
      continue;
    }
    const colon = line.indexOf(':');
    const name = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (name === 'event') ev.event = value;
    else if (name === 'id') ev.id = value;
    else if (name === 'data') ev.data = ev.data ? `${ev.data}\n${value}` : value;
    else continue;
    fields++;
  }
  return fields > 0 ? ev : undefined;
}

/** Opens `url` as an event stream (GET with the given headers). */
export async function openSse(url: string, headers: Record<string, string>): Promise<SseStream> {
  const abort = new AbortController();
  const response = await fetch(url, {
    headers: { accept: 'text/event-stream', ...headers },
    signal: abort.signal,
  });
  const reader = response.body!.getReader();
  const decoder = new TextDecoder();
  const comments: string[] = [];
  const queue: SseEvent[] = [];
  let buffer = '';
  let done = false;

  /** Reads one chunk, or gives up after `ms`. */
  async function pull(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no SSE data within ${ms} ms`)), ms);
    });
    try {
      const chunk = await Promise.race([reader.read(), timeout]);
      if (chunk.done) done = true;
      else buffer += decoder.decode(chunk.value, { stream: true });
    } finally {
      clearTimeout(timer);
    }
    let end: number;
    while ((end = buffer.indexOf('\n\n')) >= 0) {
      const ev = parseEvent(buffer.slice(0, end), comments);
      buffer = buffer.slice(end + 2);
      if (ev) queue.push(ev);
    }
  }

  return {
    response,
    comments,
    async next(ms = 10_000) {
      const deadline = Date.now() + ms;
      while (queue.length === 0) {
        if (done) throw new Error('the stream ended');
        await pull(Math.max(1, deadline - Date.now()));
      }
      return queue.shift()!;
    },
    async ended(ms = 10_000) {
      const deadline = Date.now() + ms;
      while (!done && queue.length === 0) await pull(Math.max(1, deadline - Date.now()));
      return done && queue.length === 0;
    },
    async close() {
      abort.abort();
      await reader.cancel().catch(() => {});
    },
  };
}
