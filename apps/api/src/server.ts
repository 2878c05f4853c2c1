import { randomBytes } from 'node:crypto';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '@chronos/config';
import {
  RUNNABLE_JOB_TYPES,
  createSecretBox,
  keyIdOf,
  parseEncryptionKey,
  type Service,
} from '@chronos/core';
import { createDb, type Db } from '@chronos/db';
import { closeQueues, createQueues, createRedis, pingRedis, type QueueSet } from '@chronos/queue';
import { openStorage } from '@chronos/storage';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createApp } from './app.ts';
import { localAuthenticator, oidcAuthenticator } from './auth/authenticate.ts';
import { createOidcVerifier } from './auth/oidc.ts';
import { createSessions } from './auth/sessions.ts';
import { createLoginThrottle } from './auth/throttle.ts';
import { createTokenSigner } from './auth/tokens.ts';
import { ensureInitialAdmin, seedBuiltinRoles } from './bootstrap.ts';
import type { ApiDeps } from './deps.ts';
import { createMetrics } from './metrics.ts';

export interface ApiServer extends Service {
  /** The bound port (useful with port 0). */
  readonly port: number;
  /** The wiring, once started (tests reach the database and queues through it). */
  readonly deps: ApiDeps | undefined;
}

/**
 * A request's headers must arrive within 15 s, and its whole body within 30 s (Node's defaults are
 * 60 s and 5 min): a slow sender holds one of API_MAX_IN_FLIGHT slots for that long at most.
 * Responses are not bounded by these (a live log stream lasts minutes).
 */
export const HEADERS_TIMEOUT_MS = 15_000;
export const REQUEST_TIMEOUT_MS = 30_000;

/** The auth parts for the configured mode. */
function authOf(config: Config, db: Db, redis: Redis, log: Logger): ApiDeps['auth'] {
  if (config.auth.mode === 'oidc') {
    const verifier = createOidcVerifier({
      issuer: config.auth.oidcIssuer as string,
      audience: config.auth.oidcAudience,
      jwksUrl: config.auth.oidcJwksUrl,
      rolesClaim: config.auth.oidcRolesClaim,
    });
    return { authenticator: oidcAuthenticator(db, verifier), sessions: undefined, signer: undefined };
  }
  let secret = config.auth.jwtSecret;
  if (!secret) {
    // Development only (config refuses production without JWT_SECRET): a per-process secret, so
    // tokens die with the process and replicas do not accept each other's.
    secret = randomBytes(32).toString('hex');
    log.warn('JWT_SECRET is unset: using a random per-process secret (tokens end with this process)');
  }
  const signer = createTokenSigner(secret, config.auth.accessTokenTtlSeconds);
  const throttle = createLoginThrottle(redis, {
    prefix: config.redis.prefix,
    maxFailures: config.auth.loginMaxFailures,
    windowSeconds: config.auth.loginWindowSeconds,
  });
  return {
    authenticator: localAuthenticator(db, signer),
    sessions: createSessions({ db, signer, throttle, refreshTtlSeconds: config.auth.refreshTokenTtlSeconds }),
    signer,
  };
}

/**
 * Keeps the API's Redis connection's failures from ending or flooding the process: ioredis emits
 * 'error' on every failed reconnect (the client keeps reconnecting; commands meanwhile fail fast and
 * answer 503), and each BullMQ queue (Bull Board reads them too) forwards the same errors. One line
 * when Redis goes away, one when it is back. Attach before the first command.
 */
function watchRedis(redis: Redis, log: Logger): { watchQueues(queues: QueueSet): void } {
  let down = false;
  redis.on('error', (err: Error) => {
    if (down) return log.debug({ err }, 'redis still unavailable');
    down = true;
    log.warn({ err }, 'redis connection lost; reconnecting (requests that need it answer 503)');
  });
  redis.on('ready', () => {
    if (!down) return;
    down = false;
    log.info('redis connection restored');
  });
  return {
    watchQueues(queues) {
      for (const [type, queue] of queues)
        queue.on('error', (err: Error) => {
          // The client's own errors are logged above (its listener runs first); the rest are the queue's.
          if (down || redis.status !== 'ready') return;
          log.warn({ err, type }, 'queue error');
        });
    },
  };
}

/**
 * The API process: connects PostgreSQL, Redis and object storage, seeds roles and the first admin,
 * serves HTTP. Nothing connects before `start()`.
 */
export function createApiServer(config: Config, log: Logger): ApiServer {
  let db: Db | undefined;
  let redis: Redis | undefined;
  let queues: QueueSet | undefined;
  let server: Server | undefined;
  let stopStorage: (() => Promise<void>) | undefined;
  let deps: ApiDeps | undefined;
  let port = config.http.port;

  return {
    get port() {
      return port;
    },
    get deps() {
      return deps;
    },
    async start() {
      db = createDb(config.databaseUrl, {
        applicationName: 'chronos-api',
        // PostgreSQL restarted or cut an idle connection: the pool replaces it; requests meanwhile answer 503.
        onConnectionError: (err) => log.warn({ err }, 'database connection lost'),
      });
      await db.$queryRaw`SELECT 1`;
      redis = createRedis(config.redis.url, { name: 'chronos-api', failFast: true });
      const redisWatch = watchRedis(redis, log);
      await pingRedis(redis, config.redis.url);
      // Every runnable type's queue, whatever WORKER_TYPES says: the API triggers and shows runs of
      // all of them. Types without an executor get none (no empty queue in Bull Board or /metrics).
      queues = createQueues({ connection: redis, prefix: config.redis.prefix, types: RUNNABLE_JOB_TYPES });
      redisWatch.watchQueues(queues);
      const opened = await openStorage(config);
      stopStorage = opened.stop;

      await seedBuiltinRoles(db);
      const admin = await ensureInitialAdmin(db, config.admin);
      if (admin?.generatedPassword) {
        // Printed once, on purpose outside the JSON log: it is not stored anywhere else.
        process.stdout.write(
          `\nChronos created the first admin user.\n  e-mail:   ${admin.email}\n  password: ${admin.generatedPassword}\n` +
            `Keep it now: it is shown only this once (set CHRONOS_ADMIN_PASSWORD to choose it).\n\n`,
        );
      } else if (admin) {
        log.info(
          { email: admin.email },
          'created the first admin user from CHRONOS_ADMIN_EMAIL / CHRONOS_ADMIN_PASSWORD',
        );
      }

      const key = config.encryptionKey ? parseEncryptionKey(config.encryptionKey) : undefined;
      deps = {
        config,
        db,
        redis,
        queues,
        log,
        storage: opened.storage,
        secretBox: key ? createSecretBox({ current: { id: keyIdOf(key), key } }) : undefined,
        engine: { db, queues, redis, prefix: config.redis.prefix },
        metrics: createMetrics(),
        auth: authOf(config, db, redis, log),
      };
      const { app } = createApp(deps);
      server = await new Promise<Server>((resolve, reject) => {
        const s = app.listen(config.http.port, config.http.host, (err?: Error) =>
          err ? reject(err) : resolve(s),
        );
      });
      server.headersTimeout = HEADERS_TIMEOUT_MS;
      server.requestTimeout = REQUEST_TIMEOUT_MS;
      port = (server.address() as AddressInfo).port;
      log.info({ port, host: config.http.host }, 'api listening');
    },
    async stop() {
      if (server) {
        const s = server;
        await new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeIdleConnections();
          // SSE streams are long-lived: end them so close() can finish.
          s.closeAllConnections();
        });
      }
      if (queues) await closeQueues(queues);
      await stopStorage?.();
      redis?.disconnect();
      await db?.$disconnect();
    },
  };
}
