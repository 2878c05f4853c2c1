import { constants, type Stats } from 'node:fs';
import { mkdir, readdir, rm, rmdir, unlink } from 'node:fs/promises';
import { StringDecoder } from 'node:string_decoder';
import { errnoOf, fileError, fromFsError, quote } from './fs-errors.ts';
import {
  basename,
  capped,
  requireFiles,
  selectSources,
  type FileOperationContext,
} from './operation-context.ts';
import { O_APPEND, O_READ, entryType, type CheckedPath, type EntryType } from './safe-root.ts';
import {
  StagedFile,
  checkParent,
  closeFile,
  ensureParent,
  makeDirectory,
  openChecked,
} from './staged-file.ts';

export interface ReadFileOutput {
  path: string;
  size: number;
  /** UTF-8 text, or base64 when the file holds NUL bytes (binary). */
  content: string;
  encoding: 'utf8' | 'base64';
  /** The file is larger than what was returned. */
  truncated: boolean;
}

export type ReadOutput =
  | ({ operation: 'READ' } & ReadFileOutput)
  | { operation: 'READ'; files: ReadFileOutput[]; truncated: boolean };

async function readCapped(
  op: FileOperationContext,
  file: CheckedPath,
  budget: number,
): Promise<ReadFileOutput> {
  const fh = await openChecked(op.root, file.real, O_READ, file.rel);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw fileError('NOT_A_FILE', `READ ${quote(file.rel)}: not a regular file`);
    const want = Math.min(st.size, Math.max(0, budget));
    const buf = Buffer.alloc(want);
    let got = 0;
    while (got < want) {
      if (op.signal.aborted) throw op.signal.reason;
      const { bytesRead } = await fh.read(buf, got, want - got, got);
      if (bytesRead === 0) break;
      got += bytesRead;
    }
    const bytes = buf.subarray(0, got);
    const truncated = st.size > got;
    if (bytes.includes(0)) {
      return {
        path: file.rel,
        size: st.size,
        content: bytes.toString('base64'),
        encoding: 'base64',
        truncated,
      };
    }
    // A cut may split a multi-byte character: the decoder keeps the partial one back.
    const content = truncated ? new StringDecoder('utf8').write(bytes) : bytes.toString('utf8');
    return { path: file.rel, size: st.size, content, encoding: 'utf8', truncated };
  } catch (err) {
    throw fromFsError(err, 'READ', file.rel);
  } finally {
    await closeFile(fh);
  }
}

/** READ: a file's content (capped at `readMaxBytes`), or the contents of the files a glob matches. */
export async function readOperation(op: FileOperationContext): Promise<ReadOutput> {
  const sources = await selectSources(op, { followFinal: true });
  requireFiles(sources, 'READ');
  let budget = op.limits.readMaxBytes;
  const files: ReadFileOutput[] = [];
  for (const file of sources.items) {
    const read = await readCapped(op, file, budget);
    budget -= Buffer.byteLength(read.content, read.encoding);
    files.push(read);
  }
  const [only] = files;
  if (!sources.glob && only) return { operation: 'READ', ...only };
  return { operation: 'READ', files, truncated: files.some((f) => f.truncated) };
}

export interface WriteOutput {
  operation: 'WRITE';
  path: string;
  bytesWritten: number;
  /** False when an existing file was replaced. */
  created: boolean;
}

/** The destination of WRITE/APPEND/MKDIR: never a glob, never the root itself. */
async function plainTarget(op: FileOperationContext, operation: string): Promise<CheckedPath> {
  const target = await op.root.resolve(op.payload.filePath);
  if (target.rel === '')
    throw fileError('INVALID_PATH', `${operation} needs a path below FILE_JOBS_ROOT, not the root itself`);
  return target;
}

/** WRITE: `fileContent` to a file, written aside then renamed in place (never half-written). */
export async function writeOperation(op: FileOperationContext): Promise<WriteOutput> {
  const { payload: p } = op;
  const target = await plainTarget(op, 'WRITE');
  if (target.stat) {
    if (!target.stat.isFile()) {
      throw fileError('NOT_A_FILE', `WRITE ${quote(target.rel)}: a ${entryType(target.stat)} is there`);
    }
    if (!p.overwrite) {
      throw fileError(
        'TARGET_EXISTS',
        `WRITE ${quote(target.rel)}: the file exists; set overwrite to replace it`,
      );
    }
  }
  await checkParent(target, p.createDirectories);
  await ensureParent(op.root, target);
  const content = Buffer.from(p.fileContent ?? '', 'utf8');
  const staged = await StagedFile.create(
    op.root,
    target,
    target.stat ? target.stat.mode & 0o7777 : undefined,
  );
  try {
    await staged.handle.writeFile(content);
    await staged.commit(p.overwrite);
  } catch (err) {
    await staged.discard();
    throw fromFsError(err, 'WRITE', target.rel);
  }
  return {
    operation: 'WRITE',
    path: target.rel,
    bytesWritten: content.length,
    created: target.stat === null,
  };
}

export interface AppendOutput {
  operation: 'APPEND';
  path: string;
  bytesAppended: number;
  /** The file's size afterwards. */
  size: number;
  created: boolean;
}

/** APPEND: `fileContent` at the end of a file, creating it if missing. */
export async function appendOperation(op: FileOperationContext): Promise<AppendOutput> {
  const { payload: p } = op;
  const target = await plainTarget(op, 'APPEND');
  if (target.stat && !target.stat.isFile()) {
    throw fileError('NOT_A_FILE', `APPEND ${quote(target.rel)}: a ${entryType(target.stat)} is there`);
  }
  if (!target.stat) {
    await checkParent(target, p.createDirectories);
    await ensureParent(op.root, target);
  }
  const content = Buffer.from(p.fileContent ?? '', 'utf8');
  // O_CREAT without O_EXCL: appends whether or not the file appeared meanwhile; O_NOFOLLOW holds.
  const fh = await openChecked(op.root, target.real, O_APPEND | constants.O_CREAT, target.rel);
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw fileError('NOT_A_FILE', `APPEND ${quote(target.rel)}: not a regular file`);
    await fh.appendFile(content);
    const after = await fh.stat();
    return {
      operation: 'APPEND',
      path: target.rel,
      bytesAppended: content.length,
      size: after.size,
      created: target.stat === null,
    };
  } catch (err) {
    throw fromFsError(err, 'APPEND', target.rel);
  } finally {
    await closeFile(fh);
  }
}

export interface MkdirOutput {
  operation: 'MKDIR';
  path: string;
  /** False when the directory was already there (allowed with createDirectories, like `mkdir -p`). */
  created: boolean;
}

/** MKDIR: a directory; with createDirectories, its missing parents too and no error if it exists. */
export async function mkdirOperation(op: FileOperationContext): Promise<MkdirOutput> {
  const { payload: p } = op;
  const target = await plainTarget(op, 'MKDIR');
  if (target.stat) {
    if (target.stat.isDirectory() && p.createDirectories)
      return { operation: 'MKDIR', path: target.rel, created: false };
    throw fileError(
      'TARGET_EXISTS',
      `MKDIR ${quote(target.rel)}: a ${entryType(target.stat)} exists there` +
        (target.stat.isDirectory() ? ' (set createDirectories to accept an existing directory)' : ''),
    );
  }
  await checkParent(target, p.createDirectories);
  if (p.createDirectories) {
    await makeDirectory(op.root, target.real);
  } else {
    try {
      await mkdir(target.real);
    } catch (err) {
      throw fromFsError(err, 'MKDIR', target.rel);
    }
  }
  return { operation: 'MKDIR', path: target.rel, created: true };
}

export interface ListEntry {
  /** Relative to FILE_JOBS_ROOT. */
  path: string;
  name: string;
  type: EntryType;
  /** For a symlink, the size of what it points to (0 if dangling). */
  size: number;
  mtime: string;
  /** For a symlink: the type of what it points to. */
  targetType?: EntryType | 'missing';
}

export interface ListOutput {
  operation: 'LIST';
  path: string;
  entries: ListEntry[];
  count: number;
  truncated: boolean;
}

function listEntry(rel: string, st: Stats, targetStat: Stats | null): ListEntry {
  const type = entryType(st);
  const entry: ListEntry = {
    path: rel,
    name: basename(rel),
    type,
    size: type === 'symlink' ? (targetStat?.size ?? 0) : st.size,
    mtime: st.mtime.toISOString(),
  };
  if (type === 'symlink') entry.targetType = targetStat ? entryType(targetStat) : 'missing';
  return entry;
}

/**
 * LIST: a directory's entries (with `recursive`, all below it), the matches of a glob, or one file.
 * Capped at `listMaxEntries`.
 */
export async function listOperation(op: FileOperationContext): Promise<ListOutput> {
  const max = op.limits.listMaxEntries;
  const sources = await selectSources(op, { followFinal: false, allowEmpty: true });
  const entries: ListEntry[] = [];
  let truncated = false;
  const single = sources.items.length === 1 && !sources.glob ? sources.items[0] : undefined;
  if (!sources.glob && !single)
    throw fileError('FILE_NOT_FOUND', `${quote(op.payload.filePath)} does not exist`);
  if (single && (single.stat?.isDirectory() || single.link)) {
    const dir = single.link ? await op.root.resolve(single.rel) : single;
    if (dir.stat?.isDirectory()) {
      const found = await op.root.walk(dir, op.signal, Number.POSITIVE_INFINITY, {
        stopAt: max + 1,
        recursive: op.payload.recursive,
      });
      for (const e of found) entries.push(listEntry(e.rel, e.stat, e.targetStat));
      truncated = entries.length > max;
      return { operation: 'LIST', path: dir.rel, ...finish(entries, max, truncated) };
    }
  }
  for (const item of sources.items) {
    if (entries.length > max) break;
    const target = item.link ? await op.root.resolve(item.rel) : null;
    entries.push(listEntry(item.rel, item.stat!, target?.stat ?? null));
  }
  truncated = entries.length > max;
  return { operation: 'LIST', path: sources.spec, ...finish(entries, max, truncated) };
}

function finish(entries: ListEntry[], max: number, truncated: boolean) {
  const kept = capped(entries, max);
  return { entries: kept.items, count: kept.items.length, truncated: truncated || kept.truncated };
}

export interface DeleteOutput {
  operation: 'DELETE';
  deleted: string[];
  count: number;
  truncated: boolean;
}

/**
 * DELETE: files, symlinks (the link itself, never its target) and, with `recursive`, directories;
 * an empty directory goes without it. A path that is already gone counts as deleted-nothing.
 * Symlinks inside a deleted directory are removed as links, never followed.
 */
export async function deleteOperation(op: FileOperationContext): Promise<DeleteOutput> {
  const sources = await selectSources(op, { followFinal: false, allowEmpty: true });
  for (const item of sources.items) {
    if (item.rel === '') throw fileError('INVALID_PATH', 'DELETE refuses to delete FILE_JOBS_ROOT itself');
    if (item.stat?.isDirectory() && !item.link && !op.payload.recursive) {
      let names: string[];
      try {
        names = await readdir(item.real);
      } catch (err) {
        throw fromFsError(err, 'DELETE', item.rel);
      }
      if (names.length > 0) {
        throw fileError(
          'RECURSIVE_REQUIRED',
          `DELETE ${quote(item.rel)}: the directory is not empty; set recursive to delete it with its content`,
        );
      }
    }
  }
  const deleted: string[] = [];
  for (const item of sources.items) {
    if (op.signal.aborted) throw op.signal.reason;
    try {
      if (item.link || !item.stat?.isDirectory()) await unlink(item.real);
      else if (op.payload.recursive) await rm(item.real, { recursive: true });
      else await rmdir(item.real);
      deleted.push(item.rel);
    } catch (err) {
      if (errnoOf(err) === 'ENOENT') continue;
      throw fromFsError(err, 'DELETE', item.rel);
    }
  }
  const kept = capped(deleted, op.limits.listMaxEntries);
  return { operation: 'DELETE', deleted: kept.items, count: deleted.length, truncated: kept.truncated };
}
