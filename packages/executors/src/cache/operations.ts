import type { Redis } from 'ioredis';
import type { ExecLogger } from '../types.ts';
import { chunks, replies, scanKeys, untilAborted } from './scan.ts';
import type { WarmEntry } from './warm-source.ts';

/** What every operation works with. */
export interface CacheRun {
  redis: Redis;
  signal: AbortSignal;
  log: ExecLogger;
  /** UNLINK (memory freed in the background) instead of DEL. */
  unlink: boolean;
  /** SCAN COUNT. */
  scanCount: number;
  /** Keys per pipeline or multi-key command. */
  batchSize: number;
}

function checkSignal(run: CacheRun): void {
  if (run.signal.aborted) throw run.signal.reason;
}

async function exec(run: CacheRun, pipeline: ReturnType<Redis['pipeline']>) {
  return untilAborted(pipeline.exec(), run.signal);
}

function keyBuffers(namespace: string, keys: readonly string[]): Buffer[] {
  return keys.map((k) => Buffer.from(namespace + k));
}

export interface WriteCounts {
  written: number;
  /** Left alone because they existed (skipIfExists). */
  skipped: number;
}

/** SET each entry (`EX` its TTL or `ttlSeconds`, `NX` with `skipIfExists`), a pipeline per batch. */
export async function writeEntries(
  run: CacheRun,
  namespace: string,
  entries: readonly WarmEntry[],
  options: { ttlSeconds?: number; skipIfExists: boolean },
): Promise<WriteCounts> {
  const counts: WriteCounts = { written: 0, skipped: 0 };
  for (const batch of chunks(entries, run.batchSize)) {
    checkSignal(run);
    const pipeline = run.redis.pipeline();
    for (const e of batch) {
      const args: Array<string | number> = [namespace + e.key, e.value];
      const ttl = e.ttlSeconds ?? options.ttlSeconds;
      if (ttl !== undefined) args.push('EX', ttl);
      if (options.skipIfExists) args.push('NX');
      pipeline.call('SET', ...args);
    }
    for (const r of replies(await exec(run, pipeline))) {
      if (r.value === 'OK') counts.written++;
      else counts.skipped++;
    }
  }
  return counts;
}

export interface GetLimits {
  /** Bytes of one value kept; the rest is cut. */
  maxValueBytes: number;
  /** Bytes of all values kept; values past it are left out. */
  maxTotalBytes: number;
}

export interface GetResult {
  requested: number;
  found: number;
  /** The caller's keys (without namespace) → value (UTF-8), or null when missing, not a string or left out. */
  values: Record<string, string | null>;
  missing: string[];
  /** Keys holding another type than string (hash, list, ...), whose values GET does not read. */
  notStrings: Array<{ key: string; type: string }>;
  /** Keys whose value was cut at maxValueBytes. */
  truncated: string[];
  /** Keys found whose value was left out because the output reached maxTotalBytes. */
  omitted: string[];
}

/**
 * TYPE, STRLEN and the first `maxValueBytes` (GETRANGE) of each key, so a huge value never crosses
 * the wire whole.
 */
export async function getValues(
  run: CacheRun,
  namespace: string,
  keys: readonly string[],
  limits: GetLimits,
): Promise<GetResult> {
  const result: GetResult = {
    requested: keys.length,
    found: 0,
    values: {},
    missing: [],
    notStrings: [],
    truncated: [],
    omitted: [],
  };
  const values = new Map<string, string | null>();
  let total = 0;
  for (const batch of chunks(keys, run.batchSize)) {
    checkSignal(run);
    const pipeline = run.redis.pipeline();
    for (const k of batch) {
      const key = namespace + k;
      pipeline.type(key);
      pipeline.strlen(key);
      pipeline.getrangeBuffer(key, 0, limits.maxValueBytes - 1);
    }
    // STRLEN/GETRANGE of a non-string key answer WRONGTYPE; TYPE already says what it is.
    const r = replies(await exec(run, pipeline), (err) => /^WRONGTYPE/.test(err.message));
    batch.forEach((k, i) => {
      const type = String(r[3 * i]?.value);
      if (type === 'none') {
        values.set(k, null);
        result.missing.push(k);
        return;
      }
      result.found++;
      if (type !== 'string') {
        values.set(k, null);
        result.notStrings.push({ key: k, type });
        return;
      }
      const length = Number(r[3 * i + 1]?.value);
      const bytes = r[3 * i + 2]?.value as Buffer;
      if (total + bytes.length > limits.maxTotalBytes) {
        values.set(k, null);
        result.omitted.push(k);
        return;
      }
      total += bytes.length;
      values.set(k, bytes.toString('utf8'));
      if (length > bytes.length) result.truncated.push(k);
    });
  }
  result.values = Object.fromEntries(values);
  return result;
}

/** DEL (or UNLINK) the listed keys, one command per batch. */
export async function deleteKeys(
  run: CacheRun,
  namespace: string,
  keys: readonly string[],
): Promise<{ deleted: number }> {
  let deleted = 0;
  for (const batch of chunks(keyBuffers(namespace, keys), run.batchSize)) {
    checkSignal(run);
    deleted += Number(
      await untilAborted(run.redis.call(run.unlink ? 'UNLINK' : 'DEL', ...batch), run.signal),
    );
  }
  return { deleted };
}

export interface RegionDeleteCounts {
  scanned: number;
  deleted: number;
  batches: number;
}

/** Every key of the namespace, by SCAN, deleted a batch at a time. */
export async function deleteRegion(run: CacheRun, namespace: string): Promise<RegionDeleteCounts> {
  const counts: RegionDeleteCounts = { scanned: 0, deleted: 0, batches: 0 };
  for await (const batch of scanKeys(run.redis, namespace, { ...run, count: run.scanCount })) {
    checkSignal(run);
    counts.scanned += batch.length;
    counts.deleted += Number(
      await untilAborted(run.redis.call(run.unlink ? 'UNLINK' : 'DEL', ...batch), run.signal),
    );
    counts.batches++;
    run.log.debug('cache keys deleted', { batch: counts.batches, deleted: counts.deleted });
  }
  return counts;
}

async function expireBatch(run: CacheRun, keys: readonly Buffer[], ttlSeconds: number): Promise<number> {
  const pipeline = run.redis.pipeline();
  for (const key of keys) pipeline.expire(key, ttlSeconds);
  return replies(await exec(run, pipeline)).filter((r) => Number(r.value) === 1).length;
}

/** EXPIRE the listed keys; `missing` are the ones that do not exist. */
export async function expireKeys(
  run: CacheRun,
  namespace: string,
  keys: readonly string[],
  ttlSeconds: number,
): Promise<{ updated: number; missing: number }> {
  let updated = 0;
  for (const batch of chunks(keyBuffers(namespace, keys), run.batchSize)) {
    checkSignal(run);
    updated += await expireBatch(run, batch, ttlSeconds);
  }
  return { updated, missing: keys.length - updated };
}

/** EXPIRE every key of the namespace, by SCAN. */
export async function expireRegion(
  run: CacheRun,
  namespace: string,
  ttlSeconds: number,
): Promise<{ scanned: number; updated: number }> {
  let scanned = 0;
  let updated = 0;
  for await (const batch of scanKeys(run.redis, namespace, { ...run, count: run.scanCount })) {
    checkSignal(run);
    scanned += batch.length;
    updated += await expireBatch(run, batch, ttlSeconds);
  }
  return { scanned, updated };
}

export interface RegionStats {
  keyCount: number;
  /** Summed MEMORY USAGE; extrapolated from the sample when not every key was measured. */
  memoryBytes: number;
  /** Keys whose MEMORY USAGE was read. */
  sampledKeys: number;
  memoryEstimated: boolean;
}

/** Counts the namespace's keys by SCAN and sums MEMORY USAGE over the first `maxSamples` of them. */
export async function regionStats(
  run: CacheRun,
  namespace: string,
  maxSamples: number,
): Promise<RegionStats> {
  let keyCount = 0;
  let sampledKeys = 0;
  let sampledBytes = 0;
  for await (const batch of scanKeys(run.redis, namespace, { ...run, count: run.scanCount })) {
    keyCount += batch.length;
    const sample = batch.slice(0, Math.max(0, maxSamples - sampledKeys));
    if (sample.length === 0) continue;
    const pipeline = run.redis.pipeline();
    for (const key of sample) pipeline.memory('USAGE', key);
    for (const r of replies(await exec(run, pipeline))) {
      // null: the key expired or was deleted between SCAN and MEMORY USAGE.
      if (r.value === null) continue;
      sampledKeys++;
      sampledBytes += Number(r.value);
    }
  }
  const estimated = sampledKeys < keyCount;
  const memoryBytes =
    estimated && sampledKeys > 0 ? Math.round((sampledBytes / sampledKeys) * keyCount) : sampledBytes;
  return { keyCount, memoryBytes, sampledKeys, memoryEstimated: estimated };
}

export interface CopyCounts {
  /** Source keys looked at (scanned, or listed). */
  scanned: number;
  copied: number;
  /** Left alone because they existed in the target (skipIfExists). */
  skipped: number;
  /** Listed or scanned keys gone (expired, deleted) before they could be read. */
  missing: number;
}

/**
 * Copies keys of one namespace into another with DUMP/RESTORE, so any type (string, hash, list,
 * set, zset, stream) keeps its value, and with the source's remaining TTL (PTTL) unless `ttlSeconds`
 * replaces it. REPLACE overwrites; with `skipIfExists` existing targets are kept (BUSYKEY).
 */
export async function copyKeys(
  run: CacheRun,
  from: string,
  to: string,
  options: { keys?: readonly string[]; ttlSeconds?: number; skipIfExists: boolean },
): Promise<CopyCounts> {
  const counts: CopyCounts = { scanned: 0, copied: 0, skipped: 0, missing: 0 };
  const fromLength = Buffer.byteLength(from);
  const toBuffer = Buffer.from(to);
  const batches = options.keys
    ? chunks(keyBuffers(from, options.keys), run.batchSize)
    : scanKeys(run.redis, from, { ...run, count: run.scanCount });
  for await (const batch of batches) {
    checkSignal(run);
    counts.scanned += batch.length;
    const read = run.redis.pipeline();
    for (const key of batch) {
      read.pttl(key);
      read.dumpBuffer(key);
    }
    const r = replies(await exec(run, read));
    const write = run.redis.pipeline();
    let writes = 0;
    batch.forEach((key, i) => {
      const pttl = Number(r[2 * i]?.value);
      const dump = r[2 * i + 1]?.value as Buffer | null;
      if (dump === null || pttl === -2) {
        counts.missing++;
        return;
      }
      // RESTORE takes 0 as "no expiry": a key about to expire keeps at least 1 ms, not forever.
      const ttl =
        options.ttlSeconds !== undefined ? options.ttlSeconds * 1000 : pttl === -1 ? 0 : Math.max(pttl, 1);
      const target = Buffer.concat([toBuffer, key.subarray(fromLength)]);
      if (options.skipIfExists) write.call('RESTORE', target, ttl, dump);
      else write.call('RESTORE', target, ttl, dump, 'REPLACE');
      writes++;
    });
    if (writes === 0) continue;
    for (const w of replies(await exec(run, write), (err) => /^BUSYKEY/.test(err.message))) {
      if (w.error) counts.skipped++;
      else counts.copied++;
    }
  }
  return counts;
}

export interface Replication {
  /** Replicas connected to the cache Redis when the run ended. */
  replicas: number;
  /** Replicas that acknowledged the run's writes within the timeout (WAIT). */
  acknowledged: number;
}

/** WAITs for the connected replicas to acknowledge the writes sent so far on this connection. */
export async function awaitReplicas(run: CacheRun, timeoutMs: number): Promise<Replication> {
  const info = String(await untilAborted(run.redis.info('replication'), run.signal));
  const replicas = Number(/^connected_slaves:(\d+)/m.exec(info)?.[1] ?? 0);
  if (replicas === 0) return { replicas, acknowledged: 0 };
  const acknowledged = Number(await untilAborted(run.redis.call('WAIT', replicas, timeoutMs), run.signal));
  if (acknowledged < replicas) {
    run.log.warn('not every replica acknowledged the writes in time', { replicas, acknowledged, timeoutMs });
  }
  return { replicas, acknowledged };
}
