// The API of a fault-test fleet as a real process, with an administrator to sign in as and a small
// HTTP client.
import { newId } from '@chronos/core';
import { eventually, freePort } from '../helpers.ts';
import type { AppProcess } from './app-process.ts';
import type { Fleet } from './fleet.ts';

export const API_ADMIN = { email: 'root@example.test', password: 'correct horse battery' };
/** bcrypt (cost 4) of API_ADMIN's password. */
const API_ADMIN_HASH = '$2b$04$WcZiYq57OeL3Hb7c.hBUTODf/9uqRMx1E3gNebR0xAq4xJW5ith2a';

export interface Answer {
  status: number;
  headers: Headers;
  /** Parsed JSON when the answer is JSON, else the text. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  body: any;
  text: string;
}

export interface ApiProcess {
  readonly app: AppProcess;
  /** `http://127.0.0.1:<port>` */
  readonly base: string;
  /** `fetch` of `base + path`, the answer read whole. */
  request(path: string, init?: RequestInit): Promise<Answer>;
  /** Signs API_ADMIN in and returns the access token. */
  signIn(): Promise<string>;
}

/**
 * Starts `apps/api/src/main.ts` on a free port for `fleet`, waits until it listens, and makes
 * API_ADMIN an ADMIN (the fleet's database has a user already, so the API creates no first admin).
 */
export async function startApiProcess(fleet: Fleet, extra: Record<string, string> = {}): Promise<ApiProcess> {
  const port = await freePort();
  const app = fleet.start('api', {
    HOST: '127.0.0.1',
    PORT: String(port),
    JWT_SECRET: 'fault-test-secret-of-at-least-32-characters',
    ...extra,
  });
  const base = `http://127.0.0.1:${port}`;
  await eventually(
    async () => {
      if (!app.running()) throw new Error(`the API exited\n${app.output()}`);
      return (await fetch(`${base}/healthz`)).ok;
    },
    { timeoutMs: 90_000, what: `the API to answer on ${base}` },
  );
  // The API seeded the built-in roles at start.
  await fleet.tdb.db.user.upsert({
    where: { email: API_ADMIN.email },
    update: {},
    create: {
      id: newId(),
      email: API_ADMIN.email,
      passwordHash: API_ADMIN_HASH,
      roles: { create: [{ role: { connect: { name: 'ADMIN' } } }] },
    },
  });
  const request = async (path: string, init: RequestInit = {}): Promise<Answer> => {
    const res = await fetch(`${base}${path}`, init);
    const text = await res.text();
    const body: unknown =
      /json/.test(res.headers.get('content-type') ?? '') && text ? JSON.parse(text) : text;
    return { status: res.status, headers: res.headers, body, text };
  };
  return {
    app,
    base,
    request,
    async signIn() {
      const res = await request('/api/v1/auth/login', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(API_ADMIN),
      });
      if (res.status !== 200) throw new Error(`sign-in failed: ${res.status} ${res.text}`);
      return (res.body as { accessToken: string }).accessToken;
    },
  };
}
