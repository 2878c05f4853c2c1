import type { TransactionIsolation } from '@chronos/core';
import { parseIp } from '../ip-address.ts';
import type { DatabaseTarget } from './database-url.ts';

/** A result column: its name and the server's type name (or type id when the name is unknown). */
export interface DatabaseField {
  name: string;
  dataType: string;
}

export interface StatementResult {
  rows: Record<string, unknown>[];
  fields: DatabaseField[];
  /** More rows existed than were kept. */
  truncated: boolean;
  /** Rows inserted/updated/deleted, when the server reports it for the statement. */
  rowsAffected: number | null;
  /** The server's command tag (PostgreSQL), or the statement's first keyword (MySQL). */
  command: string | null;
  /** Result sets after the first (MySQL procedures may return several); their rows are not kept. */
  extraResultSets: number;
}

export interface BeginOptions {
  readOnly: boolean;
  isolation: TransactionIsolation | null;
  /** Server-side statement timeout, or null for the server's own setting. */
  statementTimeoutMs: number | null;
}

/** How a driver error reads, for the executor's error codes. */
export type DriverFailure =
  | { kind: 'sql'; sqlState: string; errno: number | null; errorName: string | null; message: string }
  | { kind: 'network'; message: string }
  | { kind: 'other'; message: string };

/** One connection to the target, driven through one transaction by the executor. */
export interface DatabaseSession {
  readonly flavor: 'postgres' | 'mysql' | 'mariadb';
  readonly serverVersion: string | null;
  /**
   * Why the connection's account is a superuser or can act as one (server files and programs,
   * other accounts, the grant tables); empty for a least-privilege account. Run before `begin`.
   */
  superuserPowers(): Promise<string[]>;
  begin(options: BeginOptions): Promise<void>;
  /** Runs one statement, keeping at most `maxRows` rows in memory (and reading at most one more). */
  run(sql: string, values: readonly unknown[], maxRows: number): Promise<StatementResult>;
  commit(): Promise<void>;
  rollback(): Promise<void>;
  /** Asks the server, over another connection, to cancel the running statement. Best effort. */
  cancel(timeoutMs: number): Promise<void>;
  /** Closes politely (bounded by `timeoutMs`, then destroys). Never rejects. */
  close(timeoutMs: number): Promise<void>;
  /** Drops the connection at once. */
  destroy(): void;
}

export interface ConnectOptions {
  target: DatabaseTarget;
  /** The checked address to dial. */
  address: string;
  connectTimeoutMs: number;
  applicationName: string;
}

/** TLS options for Node's tls.connect from the URL's mode; the host name is what gets verified. */
export function tlsOptions(target: DatabaseTarget): {
  rejectUnauthorized: boolean;
  servername?: string;
  checkServerIdentity?: () => undefined;
} | null {
  if (target.tls === 'disable') return null;
  // SNI carries names only (RFC 6066); an IP literal is verified against the certificate's IP SANs.
  const servername = parseIp(target.host) ? {} : { servername: target.host };
  if (target.tls === 'require') return { rejectUnauthorized: false, ...servername };
  if (target.tls === 'verify-ca')
    return { rejectUnauthorized: true, ...servername, checkServerIdentity: () => undefined };
  return { rejectUnauthorized: true, ...servername };
}

/**
 * A value as JSON can hold it: Buffers as base64, bigints as strings, Dates as ISO strings,
 * non-finite numbers as strings; objects and arrays (json columns, PostgreSQL arrays) recursively.
 */
export function toJsonValue(value: unknown): unknown {
  if (value === null || value === undefined) return null;
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value;
    case 'number':
      return Number.isFinite(value) ? value : String(value);
    case 'bigint':
      return value.toString();
    case 'object':
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
      if (Buffer.isBuffer(value)) return value.toString('base64');
      if (Array.isArray(value)) return value.map(toJsonValue);
      return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, toJsonValue(v)]));
    default:
      return String(value);
  }
}
