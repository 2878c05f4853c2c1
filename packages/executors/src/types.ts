import type { CircuitBreakers } from './circuit-breakers.ts';

/** The run's logger; `context` is structured (JSON) data stored with the line. */
export interface ExecLogger {
  trace(msg: string, context?: Record<string, unknown>): void;
  debug(msg: string, context?: Record<string, unknown>): void;
  info(msg: string, context?: Record<string, unknown>): void;
  warn(msg: string, context?: Record<string, unknown>): void;
  error(msg: string, context?: Record<string, unknown>): void;
}

/**
 * Where executors may connect beyond the public internet. Loopback, private, link-local and other
 * internal addresses are refused unless listed here.
 */
export interface OutboundPolicy {
  /** Host names (or IP literals) allowed whatever they resolve to; `host` or `host:port`, case-insensitive. */
  allowHosts: readonly string[];
  /** Networks (`10.1.0.0/16`, `fd00::/8`, or single addresses) allowed as connect targets. */
  allowCidrs: readonly string[];
}

export interface ExecContext {
  runId: string;
  jobId: string;
  attempt: number;
  idempotencyKey: string;
  /** Aborted on timeout or cancel: executors stop promptly and reject with `signal.reason`. */
  signal: AbortSignal;
  log: ExecLogger;
  outbound: OutboundPolicy;
  /** Circuit breakers per job and target host, shared by the worker process (scoped by `jobId`). */
  breakers: CircuitBreakers;
}

export interface ExecResult {
  /** JSON-serialisable. */
  output?: unknown;
  exitCode?: number | null;
}

/**
 * Runs one attempt. Failures are thrown as `RetryableJobError` / `PermanentJobError` with a stable
 * `code`; aborts reject with `ctx.signal.reason`.
 */
export type Executor<P> = (payload: P, ctx: ExecContext) => Promise<ExecResult>;
