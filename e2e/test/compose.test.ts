// docker-compose.yml is a deployment nobody can `up` on this machine (no Docker engine), so what can
// be checked without one is checked here: configuration names, Redis durability, worker coverage,
// images and secrets.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_VARIABLES } from '@chronos/config';
import { RUNNABLE_JOB_TYPES } from '@chronos/core';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from './helpers.ts';

interface Service {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  ports?: (string | number)[];
  volumes?: string[];
  user?: string;
  cap_add?: string[];
  security_opt?: string[];
}

const source = readFileSync(join(REPO_ROOT, 'docker-compose.yml'), 'utf8');
// Compose resolves YAML merge keys (`<<: *anchor`), so the test does too.
const compose = parse(source, { merge: true }) as { services: Record<string, Service> };
const services = compose.services;

function environment(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  if (Array.isArray(env))
    return Object.fromEntries(
      env.map((entry) => {
        const i = entry.indexOf('=');
        return i < 0 ? [entry, ''] : [entry.slice(0, i), entry.slice(i + 1)];
      }),
    );
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

function command(service: Service): string {
  return Array.isArray(service.command) ? service.command.join(' ') : (service.command ?? '');
}

const builtFromRepo = (s: Service) =>
  s.build !== undefined &&
  (typeof s.build === 'string'
    ? s.build === '.'
    : (s.build.context ?? '.') === '.' && (s.build.dockerfile ?? 'Dockerfile') === 'Dockerfile');

/** Services that run Chronos code: built from this repository's Dockerfile. */
const chronosServices = Object.entries(services).filter(([, s]) => builtFromRepo(s));
const workers = Object.entries(services).filter(([, s]) => command(s).includes('apps/worker/src/main.ts'));

describe('docker-compose.yml', () => {
  it('runs migrate, api, scheduler and workers from the repository Dockerfile', () => {
    const names = chronosServices.map(([name]) => name);
    expect(names).toEqual(expect.arrayContaining(['migrate', 'api', 'scheduler']));
    expect(workers.length).toBeGreaterThanOrEqual(2);
    for (const [name] of workers) expect(names).toContain(name);
    expect(command(services['migrate'] as Service)).toBe('pnpm db:migrate');
    expect(command(services['api'] as Service)).toContain('apps/api/src/main.ts');
    expect(command(services['scheduler'] as Service)).toContain('apps/scheduler/src/main.ts');
    for (const [, s] of chronosServices) expect(s.image ?? 'chronos:local').toBe('chronos:local');
  });

  it('sets only variables that packages/config reads on Chronos services', () => {
    const known = new Set(CONFIG_VARIABLES);
    for (const [name, service] of chronosServices) {
      const unknown = Object.keys(environment(service)).filter((v) => !known.has(v));
      expect(unknown, `${name} sets variables Chronos does not read`).toEqual([]);
    }
  });

  it('runs every Chronos process in production mode with the secrets it then requires', () => {
    for (const [name, service] of chronosServices) {
      const env = environment(service);
      expect(env['NODE_ENV'], name).toBe('production');
      if (name === 'migrate') continue;
      expect(env['JWT_SECRET'], name).toBeDefined();
      expect(env['ENCRYPTION_KEY'], name).toBeDefined();
    }
  });

  it('ships no secret: JWT_SECRET and ENCRYPTION_KEY come from required variables only', () => {
    for (const [name, service] of chronosServices) {
      const env = environment(service);
      for (const secret of ['JWT_SECRET', 'ENCRYPTION_KEY']) {
        const value = env[secret];
        if (value === undefined) continue;
        // `${NAME:?message}` or `${NAME?message}`: compose refuses to run without it; no default.
        expect(value, `${name}.${secret}`).toMatch(new RegExp(`^\\$\\{${secret}:?\\?[^}]*\\}$`));
      }
    }
    // …and nowhere in the file is a literal value or a default for them.
    expect(source).not.toMatch(/(JWT_SECRET|ENCRYPTION_KEY)\s*[:=]\s*(?!\$\{)['"]?[A-Za-z0-9+/=_-]{8,}/);
    expect(source).not.toMatch(/\$\{(JWT_SECRET|ENCRYPTION_KEY):?-/);
  });

  it('keeps Redis durable and never evicting (BullMQ loses jobs otherwise)', () => {
    const redis = services['redis'] as Service;
    const cmd = command(redis);
    expect(cmd).toMatch(/--appendonly yes/);
    expect(cmd).toMatch(/--maxmemory-policy noeviction/);
    expect(redis.volumes?.some((v) => v.endsWith(':/data'))).toBe(true);
  });

  it('serves every job type that runs with exactly one worker service, and no other type', () => {
    const servedBy = new Map<string, string[]>();
    for (const [name, service] of workers) {
      const types = (environment(service)['WORKER_TYPES'] ?? '')
        .split(',')
        .map((t) => t.trim().toUpperCase())
        .filter(Boolean);
      expect(types.length, `${name} must name its job types`).toBeGreaterThan(0);
      expect(types, `${name} must not serve "all"`).not.toContain('ALL');
      for (const t of types) servedBy.set(t, [...(servedBy.get(t) ?? []), name]);
    }
    expect([...servedBy.keys()].sort()).toEqual([...RUNNABLE_JOB_TYPES].sort());
    for (const [type, names] of servedBy) expect(names, type).toHaveLength(1);
  });

  it('lets only the SCRIPT worker build script sandboxes: root, SYS_ADMIN, a /proc it may mount', () => {
    const [name, script] = workers.find(([, s]) => environment(s)['WORKER_TYPES'] === 'SCRIPT') ?? [];
    expect(name).toBeDefined();
    expect(script?.user).toBe('root');
    expect(script?.cap_add).toEqual(['SYS_ADMIN']);
    expect(script?.security_opt).toEqual(
      expect.arrayContaining(['apparmor=unconfined', 'systempaths=unconfined']),
    );
    expect(environment(script as Service)['SCRIPT_ISOLATION'] ?? 'namespaces').toBe('namespaces');
    for (const [other, service] of Object.entries(services)) {
      if (other === name) continue;
      expect(service.user, other).toBeUndefined();
      expect(service.cap_add, other).toBeUndefined();
    }
  });

  it('starts the apps only after the migration succeeded', () => {
    for (const [name, service] of chronosServices) {
      if (name === 'migrate') continue;
      const deps = service.depends_on ?? {};
      expect(Array.isArray(deps), name).toBe(false);
      expect((deps as Record<string, { condition?: string }>)['migrate']?.condition, name).toBe(
        'service_completed_successfully',
      );
    }
    const migrateDeps = (services['migrate'] as Service).depends_on as Record<string, { condition?: string }>;
    expect(migrateDeps['postgres']?.condition).toBe('service_healthy');
  });

  it('has the infrastructure Chronos talks to', () => {
    expect(services['postgres']?.image).toMatch(/^postgres:16/);
    expect(services['redis']?.image).toMatch(/^redis:7/);
    expect(services['rabbitmq']?.image).toMatch(/management/);
    expect(services['kafka']?.image).toMatch(/kafka/);
    expect(services['minio']?.image).toMatch(/minio/);
    expect(services['mailpit']?.image).toMatch(/mailpit/);
    const env = environment(services['api'] as Service);
    expect(env['SMTP_URL']).toBe('smtp://mailpit:1025');
    expect(env['KAFKA_BROKERS']).toBe('kafka:9092');
    expect(env['REDIS_URL']).toBe('redis://redis:6379');
    expect(env['S3_ENDPOINT']).toBe('http://minio:9000');
  });
});

describe('Dockerfile', () => {
  const dockerfile = readFileSync(join(REPO_ROOT, 'Dockerfile'), 'utf8');
  const ignore = readFileSync(join(REPO_ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim());

  it('installs from the lockfile before copying the source, and runs as a non-root user', () => {
    expect(dockerfile).toMatch(/^FROM node:20-bookworm-slim$/m);
    const lockfileCopy = dockerfile.search(/^COPY .*pnpm-lock\.yaml/m);
    const sourceCopy = dockerfile.search(/^COPY \. \./m);
    expect(lockfileCopy).toBeGreaterThan(0);
    expect(sourceCopy).toBeGreaterThan(lockfileCopy);
    expect(dockerfile).toMatch(/pnpm install --frozen-lockfile/);
    expect(dockerfile).toMatch(/pnpm generate/);
    expect(dockerfile).toMatch(/^USER (?!root)\S+$/m);
    expect(dockerfile).toMatch(/^CMD \["node", "--import", "tsx", "apps\/api\/src\/main\.ts"\]$/m);
  });

  it('keeps local state, dependencies and git out of the build context', () => {
    for (const entry of ['**/node_modules', '.data', '.git', '**/generated']) expect(ignore).toContain(entry);
  });
});
