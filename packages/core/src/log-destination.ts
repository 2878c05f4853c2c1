// Where the apps' pino loggers write: stdout, as JSON (production, log shippers) or as one readable
// line per entry (a person at a terminal). Written here rather than taken from pino-pretty: pino
// hands the destination each entry as a JSON line, so formatting is a small pure function, runs
// synchronously on the calling thread (no transport worker to flush at exit), and the write path
// can survive a reader that is gone — pino's own destination retries a write that fails with
// EPIPE forever when it flushes (a fatal entry does), which hung an app whose launcher was killed.
import { writeSync } from 'node:fs';
import { format } from 'node:util';

export type LogFormat = 'json' | 'pretty';

const LEVELS: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** Fields every entry carries, or that the line shows in its own place. */
const SHOWN_ELSEWHERE = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'v']);

function pad(n: number, width = 2): string {
  return String(n).padStart(width, '0');
}

function clock(time: unknown): string {
  const d = typeof time === 'number' ? new Date(time) : new Date();
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}.${pad(d.getMilliseconds(), 3)}`;
}

function value(v: unknown): string {
  if (typeof v === 'string') return v === '' || /[\s"=]/.test(v) ? JSON.stringify(v) : v;
  if (v === null || typeof v !== 'object') return String(v);
  return JSON.stringify(v);
}

interface SerializedError {
  type?: string;
  message?: string;
  stack?: string;
  code?: unknown;
}

/**
 * One pino entry (its JSON object) as one line: `HH:MM:SS.mmm LEVEL message key=value …`. An
 * error's type and message stay on the line; its stack follows, indented, for ERROR and FATAL.
 */
export function prettyLogLine(entry: Record<string, unknown>): string {
  const level = typeof entry['level'] === 'number' ? entry['level'] : 30;
  const label = (LEVELS[level] ?? String(entry['level'])).padEnd(5);
  const parts = [clock(entry['time']), label];
  if (typeof entry['msg'] === 'string' && entry['msg'] !== '') parts.push(entry['msg']);
  let stack = '';
  for (const [key, v] of Object.entries(entry)) {
    if (SHOWN_ELSEWHERE.has(key) || v === undefined) continue;
    if ((key === 'err' || key === 'error') && v && typeof v === 'object') {
      const err = v as SerializedError;
      const head = [err.type, err.message].filter(Boolean).join(': ');
      parts.push(`${key}=${value(err.code === undefined ? head : `${head} (${String(err.code)})`)}`);
      if (level >= 50 && typeof err.stack === 'string') {
        stack = err.stack
          .split('\n')
          .slice(1)
          .map((l) => `    ${l.trim()}`)
          .join('\n');
      }
      continue;
    }
    parts.push(`${key}=${value(v)}`);
  }
  return `${parts.join(' ')}\n${stack ? `${stack}\n` : ''}`;
}

/** How long a write may wait on a full pipe before the entry is dropped. */
const BUSY_WAIT_MS = 2000;
const sleeper = new Int32Array(new SharedArrayBuffer(4));

/**
 * A pino destination on a file descriptor (stdout by default). Writes are synchronous; a reader
 * that is gone (EPIPE) silences the destination for good instead of blocking the process, and a
 * full pipe (EAGAIN) is waited on for at most two seconds per entry.
 */
export function logDestination(format: LogFormat, fd = 1): { write(chunk: string): void } {
  let broken = false;
  const writeAll = (text: string) => {
    let buf = Buffer.from(text, 'utf8');
    let waited = 0;
    while (buf.length > 0 && !broken) {
      try {
        buf = buf.subarray(writeSync(fd, buf));
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        if ((code === 'EAGAIN' || code === 'EBUSY') && waited < BUSY_WAIT_MS) {
          Atomics.wait(sleeper, 0, 0, 10);
          waited += 10;
          continue;
        }
        if (code !== 'EAGAIN' && code !== 'EBUSY') broken = true;
        return;
      }
    }
  };
  return {
    write(chunk: string) {
      if (broken) return;
      if (format === 'json') return writeAll(chunk);
      let text = '';
      for (const line of chunk.split('\n')) {
        if (!line) continue;
        try {
          text += prettyLogLine(JSON.parse(line) as Record<string, unknown>);
        } catch {
          text += `${line}\n`;
        }
      }
      writeAll(text);
    },
  };
}

type LogMethod = (obj: object, msg?: string) => void;

/**
 * Sends what libraries print with `console.*` through the process's logger: one formatted entry
 * (`source: "console"`) instead of a bare line among JSON ones. The minio client, for one, prints
 * its retries ("Retrying request (attempt 1/1) …") with console.warn and offers no logger option.
 */
export function routeConsoleTo(log: {
  debug: LogMethod;
  info: LogMethod;
  warn: LogMethod;
  error: LogMethod;
}): void {
  const to =
    (method: LogMethod) =>
    (...args: unknown[]) =>
      method({ source: 'console' }, format(...args));
  console.debug = to(log.debug.bind(log));
  console.log = to(log.info.bind(log));
  console.info = to(log.info.bind(log));
  console.warn = to(log.warn.bind(log));
  console.error = to(log.error.bind(log));
}
