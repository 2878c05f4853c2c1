import { mkdir } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import S3rver from 's3rver';

/** The credentials s3rver accepts (config defaults S3_ACCESS_KEY / S3_SECRET_KEY to them). */
export const LOCAL_S3_CREDENTIALS = { accessKey: 'S3RVER', secretKey: 'S3RVER' } as const;

const STOP_GRACE_MS = 5000;

export interface LocalS3Options {
  /** Folder holding the buckets (created if missing); its content survives restarts. */
  directory: string;
  /** 0 picks a free port. */
  port: number;
  /** @defaultValue '127.0.0.1' */
  host?: string;
}

export interface LocalS3 {
  /** `http://host:port`, with the port actually bound. */
  endpoint: string;
  port: number;
  stop(): Promise<void>;
}

interface FilesystemStore {
  deleteObject(bucket: string, key: string): Promise<void>;
}

/**
 * s3rver removes the folders a delete leaves empty without any lock, so two deletes in one folder —
 * every multi-object delete runs its deletes in parallel — race and fail with ENOENT (HTTP 500).
 * Deletes on this local server run one at a time.
 */
function serialiseDeletes(store: FilesystemStore): void {
  const deleteObject = store.deleteObject.bind(store);
  let tail: Promise<unknown> = Promise.resolve();
  store.deleteObject = (bucket, key) => {
    const done = tail.then(() => deleteObject(bucket, key));
    tail = done.catch(() => undefined);
    return done;
  };
}

function listen(server: Server, port: number, host: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => {
      server.off('listening', onListening);
      reject(err);
    };
    const onListening = () => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(port, host);
  });
}

/**
 * Serves the S3 protocol (s3rver, patched by patches/s3rver@3.7.1.patch: its listings past one page
 * failed on OpenSSL 3, and it ignored encoding-type=url) over `directory` on host:port. Rejects with the listen error
 * (`code: 'EADDRINUSE'` when the port is taken).
 */
export async function startLocalS3({
  directory,
  port,
  host = '127.0.0.1',
}: LocalS3Options): Promise<LocalS3> {
  await mkdir(directory, { recursive: true });
  const app = new S3rver({ directory, silent: true });
  serialiseDeletes((app as unknown as { store: FilesystemStore }).store);
  // Our own server rather than s3rver's run(): its listen() leaves an 'error' event (EADDRINUSE)
  // without a listener, which would crash the process.
  const server = createServer(app.callback());
  await listen(server, port, host);
  const bound = (server.address() as AddressInfo).port;
  const reachable = host === '0.0.0.0' || host === '::' ? '127.0.0.1' : host;
  let stopped: Promise<void> | undefined;
  return {
    endpoint: `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${bound}`,
    port: bound,
    stop() {
      stopped ??= new Promise<void>((resolve) => {
        // Requests in flight may finish; keep-alive connections of other clients are not waited for.
        const force = setTimeout(() => server.closeAllConnections(), STOP_GRACE_MS);
        server.close(() => {
          clearTimeout(force);
          resolve();
        });
        server.closeIdleConnections();
      });
      return stopped;
    },
  };
}
