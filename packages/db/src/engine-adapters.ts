// Driver adapters handed to the schema engine.

import { PrismaPg } from '@prisma/adapter-pg';
import {
  ColumnTypeEnum,
  DriverAdapterError,
  type SqlDriverAdapter,
  type SqlMigrationAwareDriverAdapterFactory,
  type SqlQuery,
  type SqlResultSet,
} from '@prisma/driver-adapter-utils';
import type pg from 'pg';

function noShadowDatabase(): Promise<never> {
  return Promise.reject(new Error('Chronos never uses a shadow database'));
}

interface PgError {
  code: string;
  severity: string;
  message: string;
  detail?: string;
  column?: string;
  hint?: string;
}

function isPgError(error: unknown): error is PgError {
  if (!(error instanceof Error)) return false;
  const { code, severity } = error as Partial<PgError>;
  return typeof code === 'string' && typeof severity === 'string';
}

/**
 * adapter-pg over `pool`, with one change: adapter-pg's `executeScript` splits a script at every
 * `;` (inside comments, string literals and `$$` bodies too) and runs the pieces one by one,
 * outside any transaction. The native engine sends a migration script as one simple-protocol
 * query, which PostgreSQL runs as one implicit transaction; so does this adapter.
 */
export function migrationAdapterFactory(pool: pg.Pool): SqlMigrationAwareDriverAdapterFactory {
  const inner = new PrismaPg(pool);
  return {
    provider: inner.provider,
    adapterName: inner.adapterName,
    async connect() {
      const adapter = await inner.connect();
      adapter.executeScript = async (script: string): Promise<void> => {
        try {
          await pool.query(script);
        } catch (error) {
          if (!isPgError(error)) throw error;
          throw new DriverAdapterError({
            kind: 'postgres',
            code: error.code,
            severity: error.severity,
            message: error.message,
            detail: error.detail,
            column: error.column,
            hint: error.hint,
          });
        }
      };
      return adapter;
    },
    connectToShadowDb: noShadowDatabase,
  };
}

/** What the offline adapter says when the engine probes the server on start. */
const OFFLINE_SERVER = { version: 'PostgreSQL 15.0 (offline: schema diff only)', versionNum: 150000 };
const SERVER_PROBE = /^SELECT EXISTS\(SELECT 1 FROM pg_namespace WHERE nspname = \$1\), version\(\)/;

function refuse(what: string): Promise<never> {
  return Promise.reject(
    new Error(
      `the schema engine asked the offline adapter to ${what}; a schema-text diff must not touch a database`,
    ),
  );
}

/**
 * An adapter with no database behind it, for diffs between two schema texts. The engine probes the
 * server once when it starts (schema exists, version); that is answered, anything else is refused,
 * so a diff that would introspect a database fails loudly instead of reading one.
 */
export function offlineAdapterFactory(): SqlMigrationAwareDriverAdapterFactory {
  const adapter: SqlDriverAdapter = {
    provider: 'postgres',
    adapterName: 'chronos-offline',
    getConnectionInfo: () => ({ supportsRelationJoins: true }),
    queryRaw(query: SqlQuery): Promise<SqlResultSet> {
      if (!SERVER_PROBE.test(query.sql.trim())) return refuse(`run ${JSON.stringify(query.sql)}`);
      return Promise.resolve({
        columnNames: ['exists', 'version', 'numeric_version'],
        columnTypes: [ColumnTypeEnum.Boolean, ColumnTypeEnum.Text, ColumnTypeEnum.Int32],
        rows: [[true, OFFLINE_SERVER.version, OFFLINE_SERVER.versionNum]],
      });
    },
    executeRaw: (query: SqlQuery) => refuse(`run ${JSON.stringify(query.sql)}`),
    executeScript: () => refuse('run a script'),
    startTransaction: () => refuse('start a transaction'),
    dispose: () => Promise.resolve(),
  };
  return {
    provider: 'postgres',
    adapterName: 'chronos-offline',
    connect: () => Promise.resolve(adapter),
    connectToShadowDb: noShadowDatabase,
  };
}
