import { Agent as HttpAgent } from 'node:http';
import { Agent as HttpsAgent } from 'node:https';
import { Client, S3Error } from 'minio';

/** Where and as whom to reach an S3-compatible server (MinIO, AWS S3, the local s3rver). */
export interface StorageOptions {
  /** `http://host:port` or `https://host[:port]` (config S3_ENDPOINT). */
  endpoint: string;
  region: string;
  bucket: string;
  accessKey: string;
  secretKey: string;
  /**
   * How long one operation may take before it fails (a server that accepts connections and never
   * answers would otherwise hang the caller).
   * @defaultValue 30000
   */
  timeoutMs?: number;
}

/** JSON documents in one bucket. Keys come from the helpers in keys.ts. */
export interface Storage {
  readonly endpoint: string;
  readonly bucket: string;
  /** Writes `value` as JSON (Content-Type application/json), replacing any object at `key`. */
  putJson(key: string, value: unknown): Promise<void>;
  /** The parsed object at `key`, or null when there is none; any other failure throws. */
  getJson<T>(key: string): Promise<T | null>;
  /** Every key starting with `prefix`, sorted (code-unit order, as S3 lists them). */
  list(prefix: string): Promise<string[]>;
  /**
   * Deletes every object under `prefix`, which must end with "/" (a folder such as `jobPrefix(id)`:
   * `jobs/1` would also match `jobs/10/…`). Returns how many were deleted.
   */
  remove(prefix: string): Promise<number>;
  /** Creates the bucket unless it exists (a concurrent creator is fine), then `ping()`s. */
  ensureBucket(): Promise<void>;
  /** For readiness: an S3 server answers and the bucket exists; throws a clear error otherwise. */
  ping(): Promise<void>;
  /** Closes the idle connections; the storage is not used afterwards. */
  close(): Promise<void>;
}

/** A failure of the object store, naming the endpoint and what was being done. */
export class StorageError extends Error {
  readonly code = 'STORAGE_FAILED';
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'StorageError';
  }
}

const DELETE_BATCH = 1000; // the S3 limit of one DeleteObjects request

function s3Code(err: unknown): string | undefined {
  return err instanceof S3Error ? err.code : undefined;
}

async function readAll(stream: AsyncIterable<Buffer | string>): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : chunk);
  return Buffer.concat(chunks);
}

/** The message of an error; Node's connection errors may have none (AggregateError of each address). */
export function describeError(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0)
    return [...new Set(err.errors.map(describeError))].join('; ');
  if (err instanceof Error) return err.message || (err as NodeJS.ErrnoException).code || err.name;
  return String(err);
}

function withDeadline<T>(work: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms);
  });
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer));
}

/** A client for one bucket. Nothing connects before the first call. */
export function createStorage(opts: StorageOptions): Storage {
  let url: URL;
  try {
    url = new URL(opts.endpoint);
  } catch {
    throw new StorageError(`S3 endpoint "${opts.endpoint}" is not a URL`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    throw new StorageError(`S3 endpoint "${opts.endpoint}" must start with http:// or https://`);
  const useSSL = url.protocol === 'https:';
  const endpoint = url.origin;
  const { bucket } = opts;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  // An agent of our own, so close() can end its keep-alive sockets.
  const agent = useSSL ? new HttpsAgent({ keepAlive: true }) : new HttpAgent({ keepAlive: true });
  const client = new Client({
    endPoint: url.hostname.replace(/^\[|\]$/g, ''),
    port: url.port ? Number(url.port) : useSSL ? 443 : 80,
    useSSL,
    region: opts.region,
    accessKey: opts.accessKey,
    secretKey: opts.secretKey,
    pathStyle: true,
    transportAgent: agent,
  });

  /** Runs `work` under the deadline; failures become a StorageError naming the endpoint and `what`. */
  async function run<T>(what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(work(), timeoutMs);
    } catch (err) {
      if (err instanceof StorageError) throw err;
      throw new StorageError(`S3 at ${endpoint}: ${what} failed: ${describeError(err)}`, { cause: err });
    }
  }

  const storage: Storage = {
    endpoint,
    bucket,

    async putJson(key, value) {
      const body = JSON.stringify(value);
      if (body === undefined) throw new TypeError(`putJson(${key}): the value has no JSON form`);
      const bytes = Buffer.from(body, 'utf8');
      await run(`put ${bucket}/${key}`, () =>
        client.putObject(bucket, key, bytes, bytes.length, { 'Content-Type': 'application/json' }),
      );
    },

    async getJson<T>(key: string): Promise<T | null> {
      const bytes = await run(`get ${bucket}/${key}`, async () => {
        try {
          return await readAll(await client.getObject(bucket, key));
        } catch (err) {
          if (s3Code(err) === 'NoSuchKey') return null;
          throw err;
        }
      });
      if (bytes === null) return null;
      try {
        return JSON.parse(bytes.toString('utf8')) as T;
      } catch (err) {
        throw new StorageError(`S3 at ${endpoint}: ${bucket}/${key} is not JSON`, { cause: err });
      }
    },

    async list(prefix) {
      const keys = await run(`list ${bucket}/${prefix}*`, async () => {
        const found: string[] = [];
        for await (const item of client.listObjectsV2(bucket, prefix, true)) {
          if (item.name !== undefined) found.push(item.name);
        }
        return found;
      });
      return keys.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    },

    async remove(prefix) {
      if (!prefix.endsWith('/') || prefix === '/')
        throw new StorageError(`remove("${prefix}"): the prefix must be a folder ending with "/"`);
      const keys = await storage.list(prefix);
      for (let i = 0; i < keys.length; i += DELETE_BATCH) {
        const batch = keys.slice(i, i + DELETE_BATCH);
        const results = await run(`delete ${batch.length} objects under ${bucket}/${prefix}`, () =>
          client.removeObjects(bucket, batch),
        );
        const failed = results.filter((r) => r?.Error !== undefined);
        if (failed.length > 0) {
          const first = failed[0]?.Error;
          throw new StorageError(
            `S3 at ${endpoint}: ${failed.length} of ${batch.length} objects under ${bucket}/${prefix} were not deleted (${first?.Key}: ${first?.Code} ${first?.Message})`,
          );
        }
      }
      return keys.length;
    },

    async ensureBucket() {
      await run(`create bucket ${bucket}`, async () => {
        if (await client.bucketExists(bucket)) return;
        try {
          await client.makeBucket(bucket, opts.region);
        } catch (err) {
          // Another process created it meanwhile.
          const code = s3Code(err);
          if (
            (code === 'BucketAlreadyOwnedByYou' || code === 'BucketAlreadyExists') &&
            (await client.bucketExists(bucket))
          )
            return;
          throw err;
        }
      });
      await storage.ping();
    },

    async ping() {
      // A listing of at most one key rather than HEAD bucket: anything answering HTTP 200 passes a
      // HEAD, only an S3 server answers a listing (signed, so the credentials are checked too).
      // With two objects or more the answer carries a continuation token, which the local s3rver
      // could not make before patches/s3rver@3.7.1.patch (test/many-objects.test.ts).
      await run(`check bucket ${bucket}`, async () => {
        try {
          await client.listObjectsV2Query(bucket, '', '', '', 1, '');
        } catch (err) {
          if (s3Code(err) === 'NoSuchBucket')
            throw new StorageError(`S3 at ${endpoint}: bucket ${bucket} does not exist`, { cause: err });
          throw err;
        }
      });
    },

    async close() {
      agent.destroy();
    },
  };
  return storage;
}
