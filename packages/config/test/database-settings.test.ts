import { DATABASE_SQL_CONSTRUCTS } from '@chronos/core';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../src/index.ts';

describe('DATABASE job settings', () => {
  it('are the safe ones by default: no guarded SQL allowed, no superuser connections', () => {
    const c = loadConfig({});
    expect(c.worker.databaseAllowedSql).toEqual([]);
    expect(c.worker.databaseAllowSuperuser).toBe(false);
  });

  it('read a list of construct names (any case) or all', () => {
    const c = loadConfig({ DATABASE_ALLOWED_SQL: 'call, dblink,CALL', DATABASE_ALLOW_SUPERUSER: 'true' });
    expect(c.worker.databaseAllowedSql).toEqual(['CALL', 'DBLINK']);
    expect(c.worker.databaseAllowSuperuser).toBe(true);
    expect(loadConfig({ DATABASE_ALLOWED_SQL: 'ALL' }).worker.databaseAllowedSql).toEqual([
      ...DATABASE_SQL_CONSTRUCTS,
    ]);
  });

  it('refuse an unknown construct, naming it and the known ones', () => {
    let issues: ConfigError['issues'] = [];
    try {
      loadConfig({ DATABASE_ALLOWED_SQL: 'CALL,COPY' });
    } catch (err) {
      if (err instanceof ConfigError) issues = err.issues;
    }
    expect(issues).toHaveLength(1);
    expect(issues[0]?.variable).toBe('DATABASE_ALLOWED_SQL');
    expect(issues[0]?.message).toMatch(/unknown SQL construct COPY; use "all" or a list of COPY_PROGRAM/);
  });
});
