import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Config } from '@chronos/config';
import type { Service } from '@chronos/core';
import { createDb, type Db } from '@chronos/db';
import { closeQueues, createQueues, createRedis, pingRedis, type QueueSet } from '@chronos/queue';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import { createApp } from './app.ts';
import { ensureInitialAdmin, seedBuiltinRoles } from './bootstrap.ts';

export interface ApiServer extends Service {
  /** The bound port (useful with port 0). */
  readonly port: number;
}

/**
 * The API process: connects PostgreSQL and Redis, seeds roles and the first admin, serves HTTP.
 * Nothing connects before `start()`.
 */
export function createApiServer(config: Config, log: Logger): ApiServer {
  let db: Db | undefined;
  let redis: Redis | undefined;
  let queues: QueueSet | undefined;
  let server: Server | undefined;
  let port = config.http.port;

  return {
    get port() {
      return port;
    },
    async start() {
      db = createDb(config.databaseUrl);
      await db.$queryRaw`SELECT 1`;
      redis = createRedis(config.redis.url, { name: 'chronos-api', failFast: true });
      await pingRedis(redis, config.redis.url);
      queues = createQueues({ connection: redis, prefix: config.redis.prefix, types: config.worker.types });

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

      const app = createApp({ db, queues, log });
      server = await new Promise<Server>((resolve, reject) => {
        const s = app.listen(config.http.port, config.http.host, (err?: Error) =>
          err ? reject(err) : resolve(s),
        );
      });
      port = (server.address() as AddressInfo).port;
      log.info({ port, host: config.http.host }, 'api listening');
    },
    async stop() {
      if (server) {
        const s = server;
        await new Promise<void>((resolve) => {
          s.close(() => resolve());
          s.closeIdleConnections();
        });
      }
      if (queues) await closeQueues(queues);
      redis?.disconnect();
      await db?.$disconnect();
    },
  };
}
