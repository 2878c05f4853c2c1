// One API process per test file, on its own database, Redis prefix and S3 server: nothing shared.
import { loadConfig } from '@chronos/config';
import { newId } from '@chronos/core';
import { createTestDatabase, type TestDatabase } from '@chronos/db/testing';
import { startTestStorage, type TestStorage } from '@chronos/storage/testing';
import bcrypt from 'bcrypt';
import type { Writable } from 'node:stream';
import { pino } from 'pino';
import { createApiServer, type ApiServer } from '../src/server.ts';
import type { ApiDeps } from '../src/deps.ts';

export const ADMIN = { email: 'root@example.test', password: 'correct horse battery' };
/** 64 hex characters: a fixed test key. */
export const TEST_ENCRYPTION_KEY = 'a1'.repeat(32);
export const TEST_JWT_SECRET = 'test-secret-of-at-least-32-characters!!';

// Replies are read loosely in tests (`res.body.items[0].id`); a schema per call would add nothing.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export interface Reply<T = any> {
  status: number;
  headers: Headers;
  body: T;
  /** The raw text of the body. */
  text: string;
}

export interface CallOptions {
  token?: string | undefined;
  body?: unknown;
  headers?: Record<string, string>;
}

export interface TestApi {
  base: string;
  /** `http://host:port/api/v1` */
  api: string;
  server: ApiServer;
  deps: ApiDeps;
  db: TestDatabase['db'];
  tdb: TestDatabase;
  storage: TestStorage;
  prefix: string;
  /** Calls `/api/v1<path>` with JSON in and out. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  call<T = any>(method: string, path: string, opts?: CallOptions): Promise<Reply<T>>;
  /** Signs in and returns the access token. */
  login(email: string, password: string): Promise<string>;
  /** The first admin's access token. */
  adminToken(): Promise<string>;
  /** Creates an active user with the given roles (bcrypt cost 4, tests only) and signs them in. */
  user(
    roles: string[],
    email?: string,
  ): Promise<{ id: string; email: string; password: string; token: string }>;
  stop(): Promise<void>;
}

/** Starts an API server for one test file. `env` overrides configuration variables. */
export async function startTestApi(
  label: string,
  env: Record<string, string> = {},
  opts: { logs?: Writable } = {},
): Promise<TestApi> {
  const tdb = await createTestDatabase(label);
  const storage = await startTestStorage(label);
  const prefix = `test-${label}-${newId()}`;
  const config = loadConfig({
    DATABASE_URL: tdb.url,
    REDIS_PREFIX: prefix,
    HOST: '127.0.0.1',
    PORT: '0',
    JWT_SECRET: TEST_JWT_SECRET,
    ENCRYPTION_KEY: TEST_ENCRYPTION_KEY,
    CHRONOS_ADMIN_EMAIL: ADMIN.email,
    CHRONOS_ADMIN_PASSWORD: ADMIN.password,
    LOG_LEVEL: 'silent',
    ...storage.env,
    ...env,
  });
  // With `logs`, everything the API logs (debug and up) is written there as JSON lines.
  const log = opts.logs ? pino({ level: 'debug' }, opts.logs) : pino({ level: 'silent' });
  const server = createApiServer(config, log);
  try {
    await server.start();
  } catch (err) {
    await server.stop().catch(() => {});
    await storage.stop();
    await tdb.drop();
    throw err;
  }
  const base = `http://127.0.0.1:${server.port}`;
  const api = `${base}/api/v1`;

  const call = async <T>(method: string, path: string, opts: CallOptions = {}): Promise<Reply<T>> => {
    const headers: Record<string, string> = { ...opts.headers };
    if (opts.token) headers.authorization = `Bearer ${opts.token}`;
    let body: string | undefined;
    if (opts.body !== undefined) {
      body = typeof opts.body === 'string' ? opts.body : JSON.stringify(opts.body);
      headers['content-type'] ??= 'application/json';
    }
    const res = await fetch(`${api}${path}`, { method: method.toUpperCase(), headers, body });
    const text = await res.text();
    let parsed: unknown = text;
    if (/json/.test(res.headers.get('content-type') ?? '') && text) parsed = JSON.parse(text);
    return { status: res.status, headers: res.headers, body: parsed as T, text };
  };

  const login = async (email: string, password: string) => {
    const res = await call<{ accessToken: string }>('post', '/auth/login', { body: { email, password } });
    if (res.status !== 200) throw new Error(`login of ${email} failed: ${res.status} ${res.text}`);
    return res.body.accessToken;
  };

  let adminTokenValue: string | undefined;
  const db = tdb.db;
  return {
    base,
    api,
    server,
    deps: server.deps as ApiDeps,
    db,
    tdb,
    storage,
    prefix,
    call,
    login,
    async adminToken() {
      adminTokenValue ??= await login(ADMIN.email, ADMIN.password);
      return adminTokenValue;
    },
    async user(roles, email = `u-${newId().toLowerCase()}@example.test`) {
      const password = `pw-${newId()}`;
      const roleRows = await db.role.findMany({ where: { name: { in: roles } } });
      const id = newId();
      await db.user.create({
        data: {
          id,
          email,
          passwordHash: await bcrypt.hash(password, 4),
          roles: { create: roleRows.map((r) => ({ roleId: r.id })) },
        },
      });
      return { id, email, password, token: await login(email, password) };
    },
    async stop() {
      await server.stop();
      await storage.stop();
      await tdb.drop();
    },
  };
}
