import {
  CACHE_MAX_KEY_LENGTH,
  PermanentJobError,
  type CacheWarmSource,
  type DatabasePayloadInput,
  type HttpPayloadInput,
} from '@chronos/core';
import { displayUrl } from '../http-client.ts';
import type { HttpOutput } from '../http.ts';
import type { ExecContext, Executor } from '../types.ts';

/** A key and the exact string stored under it. */
export interface WarmEntry {
  key: string;
  value: string;
  /** Seconds; absent means the payload's TTL (or none). */
  ttlSeconds?: number;
}

/** Strings are stored as they are, anything else as its JSON text. */
export function encodeValue(value: unknown): string {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

function invalidSource(message: string): PermanentJobError {
  return new PermanentJobError(`WARM source: ${message}`, 'CACHE_WARM_SOURCE_INVALID');
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkKey(key: string, where: string): string {
  if (key.length === 0 || key.length > CACHE_MAX_KEY_LENGTH) {
    throw invalidSource(`${where}: a key must be 1 to ${CACHE_MAX_KEY_LENGTH} characters`);
  }
  return key;
}

/**
 * The entries in a JSON document: an object of key: value, or a list of records whose `keyField`
 * (a string or number) is the key and whose `valueField` is the value (`.`: the whole record).
 */
export function entriesFromJson(
  node: unknown,
  keyField: string,
  valueField: string,
  maxEntries: number,
): WarmEntry[] {
  let entries: WarmEntry[];
  if (Array.isArray(node)) {
    entries = node.map((item: unknown, i) => {
      if (!isRecord(item)) throw invalidSource(`item ${i} is not an object`);
      const key = item[keyField];
      if (typeof key !== 'string' && typeof key !== 'number') {
        throw invalidSource(`item ${i} has no string or number ${JSON.stringify(keyField)}`);
      }
      const value = valueField === '.' ? item : item[valueField];
      if (value === undefined) throw invalidSource(`item ${i} has no ${JSON.stringify(valueField)}`);
      return { key: checkKey(String(key), `item ${i}`), value: encodeValue(value) };
    });
  } else if (isRecord(node)) {
    entries = Object.entries(node).map(([key, value]) => ({
      key: checkKey(key, `key ${JSON.stringify(key.slice(0, 64))}`),
      value: encodeValue(value),
    }));
  } else {
    throw invalidSource('the entries must be an object of key: value or a list of records');
  }
  if (entries.length > maxEntries) {
    throw invalidSource(`${entries.length} entries, more than the ${maxEntries} a WARM may write`);
  }
  return entries;
}

/** The value at a dotted path (`data.items`, `results.0.rows`). */
function at(root: unknown, path: string): unknown {
  let node = root;
  for (const segment of path.split('.')) {
    if (Array.isArray(node) && /^\d+$/.test(segment)) node = node[Number(segment)];
    else if (isRecord(node) && Object.hasOwn(node, segment)) node = node[segment];
    else throw invalidSource(`the response has nothing at ${JSON.stringify(path)}`);
  }
  return node;
}

/**
 * Fetches a WARM source's entries with the HTTP executor (so the outbound policy, circuit breakers,
 * auth and redirects apply as to an HTTP job) and reads them from the JSON body.
 */
export async function fetchHttpEntries(
  source: Extract<CacheWarmSource, { type: 'http' }>,
  http: Executor<HttpPayloadInput>,
  ctx: ExecContext,
  maxEntries: number,
): Promise<WarmEntry[]> {
  const { type: _type, entriesPath, keyField, valueField, ...request } = source;
  const { output } = await http(request, ctx);
  const response = output as HttpOutput;
  let where: string;
  try {
    where = displayUrl(new URL(request.httpUrl));
  } catch {
    where = 'the WARM source';
  }
  if (response.bodyTruncated) {
    throw new PermanentJobError(
      `WARM source: the response of ${where} is larger than this worker reads`,
      'CACHE_WARM_SOURCE_TOO_LARGE',
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(response.body);
  } catch {
    throw invalidSource(`the response of ${where} is not JSON`);
  }
  const node = entriesPath ? at(json, entriesPath) : json;
  return entriesFromJson(node, keyField ?? 'key', valueField ?? 'value', maxEntries);
}

/**
 * Reads a WARM source's entries from a database query, through the DATABASE executor (outbound
 * policy, one statement, read-only transaction, timeouts and row cap apply as to a DATABASE job).
 */
export async function fetchDatabaseEntries(
  source: Extract<CacheWarmSource, { type: 'database' }>,
  database: Executor<DatabasePayloadInput>,
  ctx: ExecContext,
  maxEntries: number,
): Promise<WarmEntry[]> {
  const { output } = await database(
    {
      databaseUrl: source.databaseUrl,
      query: source.query,
      parameters: (source.parameters ?? null) as DatabasePayloadInput['parameters'],
      queryTimeoutSeconds: source.queryTimeoutSeconds ?? null,
      maxRows: source.maxRows ?? maxEntries,
      readOnly: true,
    },
    ctx,
  );
  const result = output as { rows: unknown[]; truncated: boolean };
  if (result.truncated) {
    throw new PermanentJobError(
      'WARM source: the query returned more rows than the WARM may write (raise maxRows or narrow the query)',
      'CACHE_WARM_SOURCE_TOO_LARGE',
    );
  }
  return entriesFromJson(result.rows, source.keyField ?? 'key', source.valueField ?? 'value', maxEntries);
}
