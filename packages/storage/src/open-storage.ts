import { resolve } from 'node:path';
import type { Config } from '@chronos/config';
import { startLocalS3, type LocalS3 } from './local-s3.ts';
import { StorageError, createStorage, describeError, type Storage } from './storage.ts';

export interface OpenedStorage {
  storage: Storage;
  endpoint: string;
  /**
   * Where the store is: `S3_ENDPOINT`; `local-started`, a local s3rver this process serves (until
   * `stop()`); or `local-shared`, the local s3rver another Chronos process on this machine serves.
   */
  source: 'S3_ENDPOINT' | 'local-started' | 'local-shared';
  /** Closes the storage, and the local server when this process started it. */
  stop(): Promise<void>;
}

/**
 * The object store of a Chronos process, with its bucket ensured. With S3_ENDPOINT, that server;
 * without, the local default: an s3rver over `<CHRONOS_DATA_DIR>/s3` on 127.0.0.1:S3_LOCAL_PORT,
 * started here when the port is free, else the one another Chronos process on this machine
 * already serves there (checked to answer S3 with our credentials).
 * @throws StorageError naming the variable to correct.
 */
export async function openStorage(config: Config): Promise<OpenedStorage> {
  const { endpoint: configured, localPort, ...account } = config.s3;
  if (configured !== undefined) {
    const storage = createStorage({ ...account, endpoint: configured });
    try {
      await storage.ensureBucket();
    } catch (err) {
      await storage.close();
      throw new StorageError(
        `S3_ENDPOINT ${storage.endpoint} is not usable (bucket ${account.bucket}): ${describeError(err)}`,
        { cause: err },
      );
    }
    return { storage, endpoint: storage.endpoint, source: 'S3_ENDPOINT', stop: () => storage.close() };
  }

  const directory = resolve(config.dataDir, 's3');
  let local: LocalS3 | undefined;
  try {
    local = await startLocalS3({ directory, port: localPort });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE')
      throw new StorageError(
        `the local S3 server (S3_ENDPOINT unset) could not start on 127.0.0.1:${localPort} over ${directory}: ${describeError(err)}`,
        { cause: err },
      );
  }
  const storage = createStorage({ ...account, endpoint: local?.endpoint ?? `http://127.0.0.1:${localPort}` });
  try {
    await storage.ensureBucket();
  } catch (err) {
    await storage.close();
    await local?.stop();
    throw new StorageError(
      local
        ? `the local S3 server at ${storage.endpoint} (S3_ENDPOINT unset) failed: ${describeError(err)}`
        : `127.0.0.1:${localPort} (S3_LOCAL_PORT) is taken by something that is not a usable S3 server ` +
            `(${describeError(err)}): stop it, set S3_LOCAL_PORT to a free port, or set S3_ENDPOINT`,
      { cause: err },
    );
  }
  return {
    storage,
    endpoint: storage.endpoint,
    source: local ? 'local-started' : 'local-shared',
    async stop() {
      await storage.close();
      await local?.stop();
    },
  };
}
