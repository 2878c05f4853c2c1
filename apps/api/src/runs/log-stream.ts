// `GET /runs/:id/logs/stream`: a run's log as Server-Sent Events. Lines are read from Postgres by
// polling (the worker writes them in batches anyway), so any API replica can serve any run, and no
// connection is held between polls.
import { once } from 'node:events';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Db, LogLevel, RunStatus } from '@chronos/db';
import type { Response } from 'express';
import type { Logger } from 'pino';
import { tooManyRequests } from '../http/errors.ts';
import { leaveInFlight } from '../http/in-flight.ts';
import { isFinished, runLogSelect, toRunLogLine } from './schemas.ts';

export interface LogStreamOptions {
  /** Pause between two looks at Postgres for new lines and the run's status. @defaultValue 500 */
  pollMs?: number;
  /** A comment is sent after this long without any event, so proxies keep the stream open. @defaultValue 15000 */
  heartbeatMs?: number;
  /** Most lines read per query. @defaultValue 500 */
  batchSize?: number;
  /**
   * A stream ends (without `end`: the client reconnects with Last-Event-ID) after this long, so
   * a client whose access was revoked meanwhile is checked again. @defaultValue 300000
   */
  maxLifetimeMs?: number;
}

/** Streams one user may hold open on one API process, and streams per process. */
export const LOG_STREAMS_PER_USER = 10;
export const LOG_STREAMS_PER_PROCESS = 500;

export interface LogStreamTarget {
  runId: string;
  /** Whose stream it is (for the per-user limit). */
  userId: string;
  /** Send only lines with a greater id (from `Last-Event-ID`); 0 for all. */
  afterId: bigint;
  /** Send only lines of these levels; all when undefined. */
  levels: LogLevel[] | undefined;
}

let open = 0;
const openByUser = new Map<string, number>();

/** Log streams this process is serving now (each polls Postgres until its client goes away). */
export function openLogStreams(): number {
  return open;
}

/** @throws HttpError 429 when the user, or this process, has as many streams open as allowed. */
export function assertMayOpenLogStream(userId: string): void {
  if ((openByUser.get(userId) ?? 0) >= LOG_STREAMS_PER_USER)
    throw tooManyRequests(
      `At most ${LOG_STREAMS_PER_USER} log streams may be open at once; close one first`,
      5,
    );
  if (open >= LOG_STREAMS_PER_PROCESS)
    throw tooManyRequests('This API process serves as many log streams as it can; try again shortly', 5);
}

/** SSE framing: `data:` holds one JSON line (JSON escapes newlines, so a line is one field). */
function sseEvent(event: string, data: unknown, id?: number): string {
  return `${id !== undefined ? `id: ${id}\n` : ''}event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Streams a run's log: the stored lines, then new ones as they land, until the run has finished and
 * every line written before it finished was sent; then `event: end` with the run's final status and
 * the response ends. Each line is `event: log` with `id:` = the line id, so a client reconnecting with
 * `Last-Event-ID` resumes after the last line it saw. Stops polling as soon as the client disconnects.
 */
export async function streamRunLogs(
  db: Db,
  res: Response,
  target: LogStreamTarget,
  log: Logger,
  opts: LogStreamOptions = {},
): Promise<void> {
  const pollMs = opts.pollMs ?? 500;
  const heartbeatMs = opts.heartbeatMs ?? 15_000;
  const batchSize = opts.batchSize ?? 500;
  const maxLifetimeMs = opts.maxLifetimeMs ?? 300_000;
  const started = Date.now();
  const gone = new AbortController();
  res.on('close', () => gone.abort());
  // The client may have gone while the run was being looked up: then 'close' has already fired.
  if (res.destroyed || !res.socket || res.socket.destroyed) gone.abort();
  let lastSent = Date.now();

  const send = async (chunk: string): Promise<void> => {
    if (gone.signal.aborted) throw new Error('the client disconnected');
    lastSent = Date.now();
    if (!res.write(chunk)) await once(res, 'drain', { signal: gone.signal });
  };

  /** Sends every stored line after `afterId`; returns the last id sent. */
  const drain = async (afterId: bigint): Promise<bigint> => {
    for (;;) {
      const rows = await db.jobRunLog.findMany({
        where: {
          runId: target.runId,
          id: { gt: afterId },
          ...(target.levels ? { level: { in: target.levels } } : {}),
        },
        orderBy: { id: 'asc' },
        take: batchSize,
        select: runLogSelect,
      });
      for (const row of rows) {
        const line = toRunLogLine(row);
        await send(sseEvent('log', line, line.id));
        afterId = row.id;
      }
      if (rows.length < batchSize) return afterId;
    }
  };

  res.status(200).set({
    'Content-Type': 'text/event-stream; charset=utf-8',
    'Cache-Control': 'no-cache, no-transform',
    Connection: 'keep-alive',
    // nginx would otherwise buffer the stream.
    'X-Accel-Buffering': 'no',
  });
  res.flushHeaders();
  // Open for minutes but mostly asleep, and capped by LOG_STREAMS_PER_PROCESS: not counted against
  // API_MAX_IN_FLIGHT, which would otherwise be held by idle streams.
  leaveInFlight(res.req);

  let afterId = target.afterId;
  open++;
  openByUser.set(target.userId, (openByUser.get(target.userId) ?? 0) + 1);
  try {
    await send(`: log of run ${target.runId}\n\n`);
    for (;;) {
      // Status first, lines second: every line written before the run finished is then sent
      // before `end`, since the worker closes its log before it finishes the run.
      const run = await db.jobRun.findUnique({
        where: { id: target.runId },
        select: { status: true, endTime: true, exitCode: true, errorMessage: true },
      });
      afterId = await drain(afterId);
      if (!run || isFinished(run.status)) {
        // A run deleted meanwhile (its job was deleted) ends the stream too, with status null.
        const end: { status: RunStatus | null } = run ?? { status: null };
        await send(sseEvent('end', end));
        res.end();
        return;
      }
      if (Date.now() - started >= maxLifetimeMs) {
        // The client reconnects (resuming after the last line), authenticated and authorised anew.
        await send(': stream lifetime over, reconnect to go on\n\n');
        res.end();
        return;
      }
      if (Date.now() - lastSent >= heartbeatMs) await send(': keep-alive\n\n');
      await sleep(pollMs, undefined, { signal: gone.signal });
    }
  } catch (err) {
    if (gone.signal.aborted) return;
    log.warn({ err, runId: target.runId }, 'run log stream failed');
    res.end(sseEvent('error', { message: 'The log stream failed; reconnect with Last-Event-ID to resume' }));
  } finally {
    open--;
    const mine = (openByUser.get(target.userId) ?? 1) - 1;
    if (mine === 0) openByUser.delete(target.userId);
    else openByUser.set(target.userId, mine);
  }
}
