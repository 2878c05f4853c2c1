import type { FileSystemPayload } from '@chronos/core';
import { escapePath } from 'tinyglobby';
import type { ExecLogger } from '../types.ts';
import { fileError, quote } from './fs-errors.ts';
import { SafeRoot, entryType, type CheckedPath } from './safe-root.ts';

/** Caps that keep one run's memory, output and disk use bounded. */
export interface FileSystemLimits {
  /** READ: bytes of content returned (in total when a glob reads several files). @defaultValue 1 MiB */
  readMaxBytes: number;
  /** LIST: entries returned; the output says `truncated` beyond. Also caps other path lists in outputs. @defaultValue 10_000 */
  listMaxEntries: number;
  /** Paths one glob may match before the run fails with TOO_MANY_ENTRIES. @defaultValue 10_000 */
  maxMatches: number;
  /** Entries walked below the directories of one COPY/MOVE/COMPRESS. @defaultValue 100_000 */
  maxWalkEntries: number;
  /** DECOMPRESS: total uncompressed bytes (declared and actually written) — the zip-bomb cap. @defaultValue 1 GiB */
  extractMaxBytes: number;
  /** DECOMPRESS: entries of one zip. @defaultValue 10_000 */
  extractMaxEntries: number;
}

export const DEFAULT_LIMITS: FileSystemLimits = {
  readMaxBytes: 1024 * 1024,
  listMaxEntries: 10_000,
  maxMatches: 10_000,
  maxWalkEntries: 100_000,
  extractMaxBytes: 1024 * 1024 * 1024,
  extractMaxEntries: 10_000,
};

/** What every operation receives. */
export interface FileOperationContext {
  root: SafeRoot;
  payload: FileSystemPayload;
  signal: AbortSignal;
  log: ExecLogger;
  limits: FileSystemLimits;
}

/** The paths an operation reads from: `filePath`, its glob matches, or `filePattern` inside it. */
export interface Sources {
  items: CheckedPath[];
  /** Whether a glob selected them (several may match; destinations keep their layout under `base`). */
  glob: boolean;
  /** Root-relative directory the matches' layout is taken relative to ('' for the root). */
  base: string;
  /** What was asked, for messages. */
  spec: string;
}

export interface SourceOptions {
  /** Follow a symlink in the final component (checked either way). */
  followFinal: boolean;
  /** No match (or a missing plain path) is an empty result rather than FILE_NOT_FOUND. */
  allowEmpty?: boolean;
}

/**
 * Resolves the sources of an operation. Every match is checked against the root before the
 * operation touches anything.
 */
export async function selectSources(op: FileOperationContext, options: SourceOptions): Promise<Sources> {
  const { payload: p, root } = op;
  let pattern: string | null = null;
  let base: string;
  let spec = p.filePath;
  if (p.filePattern) {
    const dir = await root.resolve(p.filePath);
    if (!dir.stat) throw fileError('FILE_NOT_FOUND', `directory ${quote(dir.rel)} does not exist`);
    if (!dir.stat.isDirectory()) {
      throw fileError(
        'NOT_A_DIRECTORY',
        `${quote(dir.rel)} is not a directory (filePattern matches inside filePath)`,
      );
    }
    const sub = SafeRoot.normalize(p.filePattern);
    const deep = p.recursive && !sub.startsWith('**') ? `**/${sub}` : sub;
    pattern = dir.rel === '' ? deep : `${escapePath(dir.rel)}/${deep}`;
    base = dir.rel;
    spec = `${p.filePath} (${p.filePattern})`;
  } else if (SafeRoot.isGlob(p.filePath)) {
    pattern = p.filePath;
    base = SafeRoot.globBase(p.filePath);
  } else {
    const item = await root.resolve(p.filePath, { followFinal: options.followFinal });
    base = item.rel.includes('/') ? item.rel.slice(0, item.rel.lastIndexOf('/')) : '';
    if (!item.stat) {
      if (options.allowEmpty) return { items: [], glob: false, base, spec };
      throw fileError('FILE_NOT_FOUND', `${quote(item.rel)} does not exist`);
    }
    return { items: [item], glob: false, base, spec };
  }
  const matches = await root.glob(pattern, op.signal, op.limits.maxMatches);
  const items: CheckedPath[] = [];
  for (const m of matches) {
    if (op.signal.aborted) throw op.signal.reason;
    const item = await root.resolve(m, { followFinal: options.followFinal });
    if (item.stat) items.push(item);
  }
  if (items.length === 0 && !options.allowEmpty) {
    throw fileError('FILE_NOT_FOUND', `nothing matches ${JSON.stringify(spec)}`);
  }
  return { items, glob: true, base, spec };
}

/** Fails unless every source is a regular file. */
export function requireFiles(sources: Sources, operation: string): void {
  for (const s of sources.items) {
    if (!s.stat?.isFile()) {
      throw fileError(
        'NOT_A_FILE',
        `${operation} ${quote(s.rel)}: not a regular file (${s.stat ? entryType(s.stat) : 'missing'})`,
      );
    }
  }
}

/** `a/b/c.txt` relative to `a` → `b/c.txt`; both root-relative. */
export function relativeTo(base: string, rel: string): string {
  if (base === '') return rel;
  return rel.startsWith(`${base}/`) ? rel.slice(base.length + 1) : rel;
}

export function joinRel(...parts: string[]): string {
  return parts.filter((p) => p !== '').join('/');
}

export function basename(rel: string): string {
  return rel.slice(rel.lastIndexOf('/') + 1);
}

export function dirname(rel: string): string {
  return rel.includes('/') ? rel.slice(0, rel.lastIndexOf('/')) : '';
}

/** The first `max` items and whether more were left off. */
export function capped<T>(items: readonly T[], max: number): { items: T[]; truncated: boolean } {
  return { items: items.slice(0, max), truncated: items.length > max };
}
