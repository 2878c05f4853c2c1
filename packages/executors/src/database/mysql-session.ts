import type { EventEmitter } from 'node:events';
import { connect as netConnect } from 'node:net';
import mysql, { type Connection, type ConnectionOptions, type FieldPacket } from 'mysql2';
import { settleWithin } from '@chronos/core';
import { readGrants } from './mysql-grants.ts';
import {
  type BeginOptions,
  type ConnectOptions,
  type DatabaseField,
  type DatabaseSession,
  type DriverFailure,
  type StatementResult,
} from './session.ts';

const TYPE_NAMES = mysql.Types as unknown as Record<number, string | undefined>;

function connectionOptions(options: ConnectOptions): ConnectionOptions {
  const { target, address } = options;
  return {
    // `host` stays the name (TLS verifies it); the socket goes to the checked address.
    host: target.host,
    port: target.port,
    stream: () => netConnect({ host: address, port: target.port }),
    user: target.user,
    password: target.password,
    database: target.database || undefined,
    ssl:
      target.tls === 'disable'
        ? undefined
        : { rejectUnauthorized: target.tls !== 'require', verifyIdentity: target.tls === 'verify-full' },
    connectTimeout: options.connectTimeoutMs,
    // Prepared statements hold one statement anyway; this keeps text-protocol queries single too.
    multipleStatements: false,
    // Dates as the server sends them (no time zone guessing); 64-bit integers as numbers only when
    // exact, as strings otherwise; DECIMAL stays a string.
    dateStrings: true,
    supportBigNumbers: true,
    bigNumberStrings: false,
    charset: 'utf8mb4',
    connectAttributes: { program_name: options.applicationName },
  };
}

function open(options: ConnectOptions): Promise<Connection> {
  return new Promise<Connection>((resolve, reject) => {
    const conn = mysql.createConnection(connectionOptions(options));
    // Errors of an idle connection (server gone) would otherwise be uncaught 'error' events.
    conn.on('error', () => {});
    conn.connect((err) => (err ? reject(err) : resolve(conn)));
  });
}

function query(conn: Connection, sql: string): Promise<unknown> {
  return new Promise((resolve, reject) => {
    conn.query(sql, (err, result) => (err ? reject(err) : resolve(result)));
  });
}

/** Opens a MySQL/MariaDB session to the checked address. Rejects with the driver's error. */
export async function connectMysql(options: ConnectOptions): Promise<DatabaseSession> {
  const conn = await open(options);
  let version: string;
  try {
    const rows = (await query(conn, 'SELECT VERSION() AS v')) as { v: string }[];
    version = String(rows[0]?.v ?? '');
  } catch (err) {
    conn.destroy();
    throw err;
  }
  const mariadb = /mariadb/i.test(version);

  return {
    flavor: mariadb ? 'mariadb' : 'mysql',
    serverVersion: version,

    async superuserPowers() {
      return superuserPowers(conn, mariadb);
    },

    async begin({ readOnly, isolation, statementTimeoutMs }: BeginOptions) {
      if (statementTimeoutMs !== null) {
        // MariaDB's limit covers every statement; MySQL's max_execution_time only read-only SELECTs
        // (the executor's own timer covers the rest).
        await query(
          conn,
          mariadb
            ? `SET SESSION max_statement_time = ${(statementTimeoutMs / 1000).toFixed(3)}`
            : `SET SESSION max_execution_time = ${Math.ceil(statementTimeoutMs)}`,
        );
      }
      // A statement with an implicit commit (DDL) would end a READ ONLY transaction and run in a
      // fresh, writable one; read-only at session level refuses it too.
      if (readOnly) await query(conn, 'SET SESSION TRANSACTION READ ONLY');
      // Session level (the connection is this run's alone), so @@transaction_isolation shows it.
      // isolation comes from a fixed enum.
      if (isolation) await query(conn, `SET SESSION TRANSACTION ISOLATION LEVEL ${isolation}`);
      await query(conn, `START TRANSACTION ${readOnly ? 'READ ONLY' : 'READ WRITE'}`);
    },

    run(sql, values, maxRows) {
      return new Promise<StatementResult>((resolve, reject) => {
        const rows: Record<string, unknown>[] = [];
        let fields: DatabaseField[] = [];
        let rowSet: number | null = null;
        let resultSets = 0;
        let truncated = false;
        let headerNext = false;
        let rowsAffected: number | null = null;
        let failed: Error | null = null;
        // Prepared (binary protocol): the server parses exactly one statement.
        const command = conn.execute(sql, values.map(toMysqlValue) as never) as unknown as EventEmitter;
        command.on('fields', (packets: FieldPacket[] | undefined, index: number | undefined) => {
          if (packets === undefined) {
            headerNext = true;
            return;
          }
          resultSets++;
          if (rowSet === null) {
            rowSet = index ?? 0;
            fields = packets.map((f) => ({
              name: f.name,
              dataType: (
                TYPE_NAMES[f.columnType ?? f.type ?? -1] ?? `type:${f.columnType ?? f.type}`
              ).toLowerCase(),
            }));
          }
        });
        command.on('result', (row: unknown, index: number | undefined) => {
          if (headerNext) {
            headerNext = false;
            const header = row as { affectedRows?: number } | null;
            if (rowSet === null && header && typeof header.affectedRows === 'number')
              rowsAffected = header.affectedRows;
            return;
          }
          if ((index ?? 0) !== rowSet) return;
          // Rows past the cap are still read off the wire (MySQL streams the whole result set),
          // but dropped at once: memory stays bounded.
          if (rows.length < maxRows) rows.push(row as Record<string, unknown>);
          else truncated = true;
        });
        command.on('error', (err: Error) => {
          failed ??= err;
          reject(err);
        });
        command.on('end', () => {
          if (failed) return;
          resolve({
            rows,
            fields,
            truncated,
            rowsAffected,
            command: null,
            extraResultSets: Math.max(0, resultSets - 1),
          });
        });
      });
    },

    commit: async () => {
      await query(conn, 'COMMIT');
    },
    rollback: async () => {
      await query(conn, 'ROLLBACK');
    },

    async cancel(timeoutMs) {
      const threadId = conn.threadId;
      if (!threadId) return;
      const killed = (async () => {
        const control = await open(options);
        try {
          await query(control, `KILL QUERY ${Number(threadId)}`);
        } finally {
          control.destroy();
        }
      })();
      await settleWithin(killed, timeoutMs, undefined);
    },

    async close(timeoutMs) {
      const ended = await settleWithin(
        new Promise<boolean>((resolve) => conn.end(() => resolve(true))),
        timeoutMs,
        false,
      );
      if (!ended) conn.destroy();
    },

    destroy() {
      conn.destroy();
    },
  };
}

/** The first column of every row: what SHOW GRANTS returns. */
async function grantLines(conn: Connection, sql: string): Promise<string[]> {
  const rows = (await query(conn, sql)) as Record<string, unknown>[];
  return rows.map((row) => String(Object.values(row)[0] ?? ''));
}

/** Roles followed through SHOW GRANTS at most (roles may be granted to roles). */
const MAX_ROLES = 20;

/**
 * The account's superuser-like privileges, its own and those of every role granted to it (active
 * or not: SET ROLE could enable it). MySQL 8 expands a role's grants with `USING`; MariaDB shows
 * them for the active role only, so each role is made active in turn and the one active before is
 * restored. A role whose grants cannot be read counts against the account.
 */
async function superuserPowers(conn: Connection, mariadb: boolean): Promise<string[]> {
  const own = readGrants(await grantLines(conn, 'SHOW GRANTS'));
  const reasons = [...own.reasons];
  if (own.roles.length === 0) return reasons;
  if (!mariadb) {
    const roles = own.roles.slice(0, MAX_ROLES).join(', ');
    try {
      reasons.push(
        ...readGrants(await grantLines(conn, `SHOW GRANTS FOR CURRENT_USER() USING ${roles}`)).reasons,
      );
    } catch (err) {
      reasons.push(`the privileges of its roles could not be read (${(err as Error).message})`);
    }
    return [...new Set(reasons)];
  }
  const rows = (await query(conn, 'SELECT CURRENT_ROLE() AS r')) as { r: string | null }[];
  const active = rows[0]?.r ?? null;
  const seen = new Set<string>();
  const pending = [...own.roles];
  try {
    while (pending.length > 0 && seen.size < MAX_ROLES) {
      const role = pending.shift() as string;
      if (seen.has(role)) continue;
      seen.add(role);
      try {
        await query(conn, `SET ROLE ${role}`);
        const granted = readGrants(await grantLines(conn, `SHOW GRANTS FOR ${role}`));
        reasons.push(...granted.reasons.map((r) => `${r} (role ${role})`));
        pending.push(...granted.roles);
      } catch (err) {
        reasons.push(`the privileges of role ${role} could not be read (${(err as Error).message})`);
      }
    }
  } finally {
    // A failure here fails the run: the session must not go on under another role.
    await query(conn, active === null ? 'SET ROLE NONE' : `SET ROLE \`${active.replaceAll('`', '``')}\``);
  }
  if (pending.some((role) => !seen.has(role))) reasons.push(`more than ${MAX_ROLES} roles to read`);
  return [...new Set(reasons)];
}

/** mysql2 binds numbers, strings, booleans, null and Buffers; JSON objects and arrays go as text. */
function toMysqlValue(value: unknown): unknown {
  if (value === undefined) return null;
  if (value !== null && typeof value === 'object' && !Buffer.isBuffer(value) && !(value instanceof Date)) {
    return JSON.stringify(value);
  }
  return value;
}

const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'EPIPE',
  'ECONNABORTED',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
]);

export function describeMysqlError(err: unknown): DriverFailure {
  const e = err as {
    code?: unknown;
    errno?: unknown;
    sqlState?: unknown;
    sqlMessage?: unknown;
    message?: unknown;
  };
  const message =
    typeof e?.sqlMessage === 'string'
      ? e.sqlMessage
      : typeof e?.message === 'string'
        ? e.message
        : String(err);
  if (typeof e?.sqlState === 'string' && e.sqlState !== '') {
    return {
      kind: 'sql',
      sqlState: e.sqlState,
      errno: typeof e.errno === 'number' ? e.errno : null,
      errorName: typeof e.code === 'string' ? e.code : null,
      message,
    };
  }
  if (typeof e?.code === 'string' && NETWORK_CODES.has(e.code)) return { kind: 'network', message };
  return { kind: 'other', message };
}
