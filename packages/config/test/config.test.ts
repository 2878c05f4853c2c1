import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { RUNNABLE_JOB_TYPES } from '@chronos/core';
import { describe, expect, it } from 'vitest';
import { CONFIG_VARIABLES, ConfigError, loadConfig } from '../src/index.ts';

function issuesOf(env: NodeJS.ProcessEnv) {
  try {
    loadConfig(env);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues;
    throw err;
  }
  throw new Error('expected loadConfig to fail');
}

describe('loadConfig', () => {
  it('with an empty environment yields local defaults that work on this machine', () => {
    const c = loadConfig({});
    expect(c.databaseUrl).toBe('postgresql://postgres@127.0.0.1:5432/chronos');
    expect(c.redis).toEqual({ url: 'redis://127.0.0.1:6379', prefix: 'chronos' });
    expect(c.http.port).toBe(3000);
    // "all" is every type with an executor, and only those.
    expect(c.worker.types).toEqual([...RUNNABLE_JOB_TYPES]);
    expect(c.worker.types).not.toContain('DB_TO_KAFKA');
    expect(c.scheduler).toEqual({
      tickMs: 1000,
      horizonSeconds: 60,
      batchSize: 500,
      metricsPort: 9464,
      reconcileMs: 5000,
      instanceId: undefined,
      misfireThresholdSeconds: 60,
      defaultTimezone: 'UTC',
    });
    expect(c.smtp.url).toBe('smtp://127.0.0.1:1025');
    expect(c.auth.jwtSecret).toBeUndefined();
    expect(c.isProduction).toBe(false);
  });

  it('returns a frozen object', () => {
    const c = loadConfig({});
    expect(Object.isFrozen(c)).toBe(true);
    expect(Object.isFrozen(c.worker.types)).toBe(true);
    expect(() => {
      (c.http as { port: number }).port = 1;
    }).toThrow(TypeError);
  });

  it('parses explicit values', () => {
    const c = loadConfig({
      PORT: '8080',
      WORKER_TYPES: 'http, script,HTTP',
      SCRIPT_ENABLED: 'false',
      DEFAULT_TIMEZONE: 'Asia/Ho_Chi_Minh',
      HTTP_ALLOW_HOSTS: 'localhost, example.org',
      REDIS_PREFIX: 'test-1',
    });
    expect(c.http.port).toBe(8080);
    expect(c.worker.types).toEqual(['HTTP', 'SCRIPT']);
    expect(c.worker.scriptEnabled).toBe(false);
    expect(c.scheduler.defaultTimezone).toBe('Asia/Ho_Chi_Minh');
    expect(c.worker.httpAllowHosts).toEqual(['localhost', 'example.org']);
    expect(c.worker.concurrency).toEqual({ default: 10, perType: {} });
    expect(loadConfig({ WORKER_CONCURRENCY: '4,http=50, SCRIPT=2' }).worker.concurrency).toEqual({
      default: 4,
      perType: { HTTP: 50, SCRIPT: 2 },
    });
    expect(() => loadConfig({ WORKER_CONCURRENCY: 'FTP=3' })).toThrow(
      /WORKER_CONCURRENCY unknown job type FTP/,
    );
    expect(() => loadConfig({ WORKER_CONCURRENCY: '0' })).toThrow(
      /WORKER_CONCURRENCY must be a number 1-1000/,
    );
    expect(c.redis.prefix).toBe('test-1');
  });

  it('refuses WORKER_TYPES naming a type without an executor, in one line naming it', () => {
    const issues = issuesOf({ WORKER_TYPES: 'HTTP,email, DB_TO_KAFKA' });
    expect(issues).toHaveLength(1);
    expect(issues[0]?.variable).toBe('WORKER_TYPES');
    expect(issues[0]?.message).toBe(
      'EMAIL, DB_TO_KAFKA jobs cannot run in this version (no executor); use "all" or a list of ' +
        'HTTP, DATABASE, FILE_SYSTEM, CACHE, SCRIPT, DUMMY',
    );
    expect(() => loadConfig({ WORKER_TYPES: 'REPORT' })).toThrow(
      /^[^\n]*WORKER_TYPES REPORT jobs cannot run/,
    );
  });

  it('names every bad variable and why, without echoing passwords', () => {
    const issues = issuesOf({
      PORT: 'abc',
      DATABASE_URL: 'mysql://root:hunter2@db/x',
      WORKER_TYPES: 'HTTP,FTP',
      DEFAULT_TIMEZONE: 'Mars/Olympus',
      SCRIPT_ENABLED: 'maybe',
      ENCRYPTION_KEY: 'short',
    });
    const byVar = Object.fromEntries(issues.map((i) => [i.variable, i.message]));
    expect(Object.keys(byVar).sort()).toEqual(
      ['DATABASE_URL', 'DEFAULT_TIMEZONE', 'ENCRYPTION_KEY', 'PORT', 'SCRIPT_ENABLED', 'WORKER_TYPES'].sort(),
    );
    expect(byVar.PORT).toMatch(/whole number/);
    expect(byVar.DATABASE_URL).toMatch(/postgresql:\/\//);
    expect(byVar.WORKER_TYPES).toMatch(/FTP/);
    expect(byVar.DEFAULT_TIMEZONE).toMatch(/IANA/);
    expect(JSON.stringify(issues)).not.toContain('hunter2');
  });

  it('rejects out-of-range numbers', () => {
    expect(issuesOf({ PORT: '70000' })[0]).toEqual({
      variable: 'PORT',
      message: 'must be between 0 and 65535 (got 70000)',
    });
  });

  it('in production refuses to start without JWT_SECRET and ENCRYPTION_KEY', () => {
    const issues = issuesOf({ NODE_ENV: 'production' });
    expect(issues.map((i) => i.variable).sort()).toEqual(['ENCRYPTION_KEY', 'JWT_SECRET']);
    const ok = loadConfig({
      NODE_ENV: 'production',
      JWT_SECRET: 'x'.repeat(32),
      ENCRYPTION_KEY: 'ab'.repeat(32),
    });
    expect(ok.isProduction).toBe(true);
  });

  it('with AUTH_MODE=oidc needs the issuer and the audience (else any token of the provider would do)', () => {
    expect(
      issuesOf({ AUTH_MODE: 'oidc' })
        .map((i) => i.variable)
        .sort(),
    ).toEqual(['OIDC_AUDIENCE', 'OIDC_ISSUER']);
    const ok = loadConfig({
      AUTH_MODE: 'oidc',
      OIDC_ISSUER: 'https://id.example.test/realms/x',
      OIDC_AUDIENCE: 'chronos',
    });
    expect(ok.auth.oidcAudience).toBe('chronos');
  });

  it('lists every variable it reads', () => {
    expect(CONFIG_VARIABLES).toContain('DATABASE_URL');
    expect(CONFIG_VARIABLES).toContain('WORKER_TYPES');
    expect(CONFIG_VARIABLES).toContain('S3_ENDPOINT');
    expect(new Set(CONFIG_VARIABLES).size).toBe(CONFIG_VARIABLES.length);
  });
});

describe('loadConfigOrExit', () => {
  it('stops the process with one line naming the variable and why', () => {
    const script = fileURLToPath(new URL('./fixtures/load-config.ts', import.meta.url));
    const res = spawnSync(process.execPath, ['--import', 'tsx', script], {
      env: { ...process.env, PORT: 'not-a-port', SCHEDULER_TICK_MS: '' },
      encoding: 'utf8',
    });
    expect(res.status).toBe(78);
    expect(res.stdout).toBe('');
    expect(res.stderr.trim().split('\n')).toEqual([
      'demo-app: invalid configuration: PORT must be a whole number (got "not-a-port")',
    ]);
  });
});
