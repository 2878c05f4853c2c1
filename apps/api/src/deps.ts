import type { Config } from '@chronos/config';
import type { SecretBox } from '@chronos/core';
import type { Db } from '@chronos/db';
import type { EngineDeps } from '@chronos/engine';
import type { QueueSet } from '@chronos/queue';
import type { Storage } from '@chronos/storage';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Authenticator } from './auth/authenticate.ts';
import type { Sessions } from './auth/sessions.ts';
import type { TokenSigner } from './auth/tokens.ts';
import type { Metrics } from './metrics.ts';

/** What every route module receives: the process's connections and settings, built once in server.ts. */
export interface ApiDeps {
  config: Config;
  db: Db;
  redis: Redis;
  queues: QueueSet;
  log: Logger;
  /** Definition documents and run contexts (S3 / local s3rver). */
  storage: Storage;
  /** Encrypts sensitive variables and webhook secrets; absent without ENCRYPTION_KEY (development). */
  secretBox: SecretBox | undefined;
  /** The engine's job-changing functions take these. */
  engine: EngineDeps;
  metrics: Metrics;
  auth: {
    authenticator: Authenticator;
    /** Local accounts (AUTH_MODE=local); undefined with OIDC. */
    sessions: Sessions | undefined;
    signer: TokenSigner | undefined;
  };
}
