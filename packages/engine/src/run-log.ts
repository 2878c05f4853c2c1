import { isDatabaseUnavailable } from '@chronos/db';

export type LogLevelName = 'TRACE' | 'DEBUG' | 'INFO' | 'WARN' | 'ERROR';

export interface RunLogOptions {
  /** Most lines stored per run. @defaultValue 10000 */
  maxLines?: number;
  /** Most bytes (message + context) stored per run. @defaultValue 5 MiB */
  maxBytes?: number;
  /** Lines buffered before a write. @defaultValue 500 */
  batchSize?: number;
  /** Longest a line waits in the buffer. @defaultValue 200 ms */
  flushMs?: number;
  /** Applied to every message and context before storing (secret masking). */
  mask?: (text: string) => string;
  /**
   * A write failed. When the database was unreachable its lines are kept and `detach()` hands them
   * over with the rest (the finish writes them once the database is back); otherwise they are lost.
   */
  onError?: (err: unknown) => void;
}

export interface RunLogger {
  trace(message: string, context?: Record<string, unknown>): void;
  debug(message: string, context?: Record<string, unknown>): void;
  info(message: string, context?: Record<string, unknown>): void;
  warn(message: string, context?: Record<string, unknown>): void;
  error(message: string, context?: Record<string, unknown>): void;
  /**
   * Writes what is buffered and, if lines were dropped, one last line saying so. The log has ended:
   * later lines (an executor that goes on after its run ended) are not stored.
   */
  close(): Promise<void>;
  /**
   * Ends the log like `close()` (writes in flight are awaited, the dropped-lines line is added) but
   * returns what is still buffered instead of writing it: the caller writes it with the run's finish,
   * in the same statement.
   */
  detach(): Promise<RunLogLine[]>;
  readonly stored: number;
  readonly dropped: number;
}

/** One stored line of a run's log: message and context already masked, context as JSON text. */
export interface RunLogLine {
  ts: Date;
  level: LogLevelName;
  message: string;
  context: string | null;
}

/** Writes lines of a run's log (one statement per call). */
export type RunLogSink = (runId: string, lines: readonly RunLogLine[]) => Promise<void>;

/** Postgres stores no NUL character in text or jsonb: it becomes U+FFFD. */
const storable = (text: string) => (text.includes('\0') ? text.replaceAll('\0', '\uFFFD') : text);

/**
 * A JSON.stringify replacer that masks every string, key and number of a context (masking the JSON
 * text instead could turn a masked number into invalid JSON, which Postgres would refuse with the
 * whole batch of lines).
 */
function maskedJson(mask: (text: string) => string) {
  return (_key: string, raw: unknown): unknown => {
    // A boxed string or number is unwrapped after the replacer: unwrap it first, to mask it.
    const value = raw instanceof String || raw instanceof Number ? raw.valueOf() : raw;
    if (typeof value === 'string') return storable(mask(value));
    if (typeof value === 'bigint') return mask(String(value));
    if (typeof value === 'number') {
      const text = String(value);
      const masked = mask(text);
      return masked === text ? value : masked;
    }
    if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
      // A new object only when a key changes (the common case allocates nothing).
      const keys = Object.keys(value);
      if (keys.every((k) => storable(mask(k)) === k)) return value;
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [storable(mask(k)), v]));
    }
    return value;
  };
}

/**
 * A run's log: lines go to job_run_logs in batches (one multi-row INSERT per batch, never one per
 * line), capped per run; past the cap lines are counted, not stored, and `close()` ends the log with
 * one line saying how many were dropped. Lines are written through `sink` (`poolLogSink`, or the
 * run recorder's `writeLog`).
 */
export function createRunLogger(sink: RunLogSink, runId: string, opts: RunLogOptions = {}): RunLogger {
  const maxLines = opts.maxLines ?? 10_000;
  const maxBytes = opts.maxBytes ?? 5 * 1024 * 1024;
  const batchSize = opts.batchSize ?? 500;
  const flushMs = opts.flushMs ?? 200;
  const mask = opts.mask ?? ((t: string) => t);
  let buffer: RunLogLine[] = [];
  let stored = 0;
  let bytes = 0;
  let dropped = 0;
  let droppedBytes = 0;
  let timer: NodeJS.Timeout | undefined;
  let writing: Promise<void> = Promise.resolve();
  /** Set by detach(): the log has ended (its last line written or handed over) and takes no more. */
  let ended = false;

  /** Lines a write could not store because the database was unreachable: they go with the finish. */
  let unwritten: RunLogLine[] = [];

  function write(lines: RunLogLine[]): void {
    writing = writing.then(async () => {
      try {
        await sink(runId, lines);
      } catch (err) {
        if (isDatabaseUnavailable(err)) unwritten = unwritten.concat(lines);
        opts.onError?.(err);
      }
    });
  }

  function flush(): void {
    clearTimeout(timer);
    timer = undefined;
    if (buffer.length === 0) return;
    const lines = buffer;
    buffer = [];
    write(lines);
  }

  function add(level: LogLevelName, message: string, context?: Record<string, unknown>): void {
    if (ended) return;
    const text = storable(mask(String(message)));
    let ctx: string | null = null;
    if (context !== undefined) {
      try {
        ctx = JSON.stringify(context, maskedJson(mask));
      } catch {
        ctx = JSON.stringify({ unserialisable: true });
      }
    }
    const size = Buffer.byteLength(text) + (ctx ? Buffer.byteLength(ctx) : 0);
    if (stored >= maxLines || bytes + size > maxBytes) {
      dropped++;
      droppedBytes += size;
      return;
    }
    stored++;
    bytes += size;
    buffer.push({ ts: new Date(), level, message: text, context: ctx });
    if (buffer.length >= batchSize) flush();
    else if (!timer) {
      timer = setTimeout(flush, flushMs);
      timer.unref();
    }
  }

  async function detach(): Promise<RunLogLine[]> {
    if (ended) {
      await writing;
      return [];
    }
    ended = true;
    clearTimeout(timer);
    timer = undefined;
    if (dropped > 0)
      buffer.push({
        ts: new Date(),
        level: 'WARN',
        message: `${dropped} more log lines (${droppedBytes} bytes) were dropped: the run's log is capped at ${maxLines} lines / ${maxBytes} bytes`,
        context: JSON.stringify({ dropped, droppedBytes, maxLines, maxBytes }),
      });
    const rest = buffer;
    buffer = [];
    await writing;
    const kept = unwritten;
    unwritten = [];
    return kept.length > 0 ? kept.concat(rest) : rest;
  }

  return {
    trace: (m, c) => add('TRACE', m, c),
    debug: (m, c) => add('DEBUG', m, c),
    info: (m, c) => add('INFO', m, c),
    warn: (m, c) => add('WARN', m, c),
    error: (m, c) => add('ERROR', m, c),
    get stored() {
      return stored;
    },
    get dropped() {
      return dropped;
    },
    detach,
    async close() {
      const rest = await detach();
      if (rest.length > 0) write(rest);
      await writing;
    },
  };
}
