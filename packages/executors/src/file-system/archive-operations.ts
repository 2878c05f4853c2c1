import { randomBytes } from 'node:crypto';
import { mkdir, rename, rm, link, unlink, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { Transform, type Readable, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip, createGzip } from 'node:zlib';
import { ChronosError, relativePathProblem } from '@chronos/core';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { invalidPayload } from '../errors.ts';
import { errnoOf, fileError, fromFsError, quote } from './fs-errors.ts';
import {
  basename,
  capped,
  joinRel,
  relativeTo,
  requireFiles,
  selectSources,
  type FileOperationContext,
} from './operation-context.ts';
import { openZip } from './zip-reader.ts';
import { O_CREATE, O_READ, entryType, type CheckedPath } from './safe-root.ts';
import {
  StagedFile,
  checkParent,
  closeFile,
  ensureParent,
  exists,
  makeDirectory,
  openChecked,
  readStreamOf,
  writeStreamOf,
} from './staged-file.ts';

export interface CompressOutput {
  operation: 'COMPRESS';
  format: 'zip' | 'gzip';
  outputPath: string;
  /** Files (and empty directories) put in the archive. */
  files: number;
  bytesIn: number;
  bytesOut: number;
  skipped: string[];
}

interface ZipItem {
  name: string;
  file: CheckedPath | null; // null: an empty directory
  mtime: Date;
  mode: number;
}

/** The target of COMPRESS/DECOMPRESS (gzip): a file path, checked for overwrite and parents. */
async function fileTarget(op: FileOperationContext, target: CheckedPath, operation: string): Promise<void> {
  if (target.rel === '') throw fileError('INVALID_PATH', `${operation} needs a target below FILE_JOBS_ROOT`);
  if (target.stat) {
    if (!target.stat.isFile()) {
      throw fileError(
        'NOT_A_FILE',
        `${operation} target ${quote(target.rel)}: a ${entryType(target.stat)} is there`,
      );
    }
    if (!op.payload.overwrite) {
      throw fileError(
        'TARGET_EXISTS',
        `${operation} target ${quote(target.rel)} exists; set overwrite to replace it`,
      );
    }
  }
  await checkParent(target, op.payload.createDirectories);
}

/**
 * COMPRESS: zip (files, globs, directories with `recursive`; streamed by yazl) or gzip (one file).
 * The format is `compressionFormat`, else `.gz`/`.gzip` targets are gzip and anything else zip.
 */
export async function compressOperation(op: FileOperationContext): Promise<CompressOutput> {
  const { payload: p, root } = op;
  const targetPath = p.targetPath ?? '';
  const format = p.compressionFormat ?? (/\.gz(ip)?$/i.test(targetPath) ? 'gzip' : 'zip');
  const sources = await selectSources(op, { followFinal: true });
  const target = await root.resolve(targetPath);
  await fileTarget(op, target, 'COMPRESS');
  for (const s of sources.items) {
    if (s.real === target.real)
      throw fileError('INVALID_TARGET', `COMPRESS: the target ${quote(target.rel)} is also a source`);
  }

  if (format === 'gzip') {
    const [only] = sources.items;
    if (sources.items.length !== 1 || !only) {
      throw invalidPayload(
        `gzip compresses exactly one file, but ${JSON.stringify(sources.spec)} matches ${sources.items.length}; use compressionFormat "zip"`,
      );
    }
    requireFiles(sources, 'COMPRESS');
    await ensureParent(root, target);
    const src = await openChecked(root, only.real, O_READ, only.rel);
    const staged = await StagedFile.create(root, target);
    try {
      await pipeline(readStreamOf(src), createGzip(), writeStreamOf(staged.handle), {
        signal: op.signal,
      });
      const bytesOut = (await staged.handle.stat()).size;
      await staged.commit(p.overwrite);
      return {
        operation: 'COMPRESS',
        format,
        outputPath: target.rel,
        files: 1,
        bytesIn: only.stat!.size,
        bytesOut,
        skipped: [],
      };
    } catch (err) {
      await staged.discard();
      if (op.signal.aborted) throw op.signal.reason;
      throw fromFsError(err, 'COMPRESS', only.rel);
    } finally {
      await closeFile(src);
    }
  }

  // zip: every entry planned (and checked) before the archive is started.
  const items: ZipItem[] = [];
  const names = new Set<string>();
  const skipped: string[] = [];
  let bytesIn = 0;
  const add = (item: ZipItem) => {
    if (names.has(item.name))
      throw fileError(
        'INVALID_TARGET',
        `COMPRESS: two sources would be stored as ${JSON.stringify(item.name)}`,
      );
    names.add(item.name);
    items.push(item);
    if (item.file?.stat) bytesIn += item.file.stat.size;
  };
  for (const s of sources.items) {
    const st = s.stat!;
    const name = sources.glob ? relativeTo(sources.base, s.rel) : basename(s.rel) || 'root';
    if (st.isFile()) {
      add({ name, file: s, mtime: st.mtime, mode: st.mode & 0o7777 });
      continue;
    }
    if (!st.isDirectory())
      throw fileError('NOT_A_FILE', `COMPRESS ${quote(s.rel)}: a ${entryType(st)} cannot be archived`);
    if (!p.recursive) {
      throw fileError(
        'RECURSIVE_REQUIRED',
        `COMPRESS ${quote(s.rel)}: it is a directory; set recursive to archive it with its content`,
      );
    }
    const entries = await root.walk(s, op.signal, op.limits.maxWalkEntries);
    const nonEmpty = new Set(entries.map((e) => e.sub.slice(0, Math.max(0, e.sub.lastIndexOf('/')))));
    if (entries.length === 0) add({ name: `${name}/`, file: null, mtime: st.mtime, mode: st.mode & 0o7777 });
    for (const e of entries) {
      if (e.real === target.real) continue; // an older copy of the archive inside the directory
      const entryName = `${name}/${e.sub}`;
      if (e.type === 'directory') {
        if (!nonEmpty.has(e.sub))
          add({ name: `${entryName}/`, file: null, mtime: e.stat.mtime, mode: e.stat.mode & 0o7777 });
      } else if (e.type === 'file') {
        add({
          name: entryName,
          file: { rel: e.rel, real: e.real, stat: e.stat, link: false },
          mtime: e.stat.mtime,
          mode: e.stat.mode & 0o7777,
        });
      } else if (e.type === 'symlink' && e.targetStat?.isFile()) {
        const resolved = await root.resolve(e.rel);
        add({ name: entryName, file: resolved, mtime: e.targetStat.mtime, mode: e.targetStat.mode & 0o7777 });
      } else {
        skipped.push(e.rel);
      }
    }
  }

  if (skipped.length > 0) {
    op.log.warn(`COMPRESS leaves out ${skipped.length} entries that are not regular files`, {
      skipped: skipped.slice(0, 20),
    });
  }
  await ensureParent(root, target);
  const staged = await StagedFile.create(root, target);
  const opened: FileHandle[] = [];
  const zip = new yazl.ZipFile();
  try {
    for (const item of items) {
      if (item.file === null) {
        zip.addEmptyDirectory(item.name, { mtime: item.mtime, mode: item.mode });
        continue;
      }
      const file = item.file;
      zip.addReadStreamLazy(item.name, { mtime: item.mtime, mode: item.mode }, (cb) => {
        openChecked(root, file.real, O_READ, file.rel).then(
          (fh) => {
            opened.push(fh);
            cb(null, readStreamOf(fh));
          },
          (err: unknown) => cb(err, undefined as unknown as Readable),
        );
      });
    }
    zip.end();
    const output = zip.outputStream as Readable;
    zip.on('error', (err: Error) => output.destroy(err));
    await pipeline(output, writeStreamOf(staged.handle), { signal: op.signal });
    const bytesOut = (await staged.handle.stat()).size;
    await staged.commit(p.overwrite);
    return {
      operation: 'COMPRESS',
      format,
      outputPath: target.rel,
      files: items.length,
      bytesIn,
      bytesOut,
      skipped: capped(skipped, op.limits.listMaxEntries).items,
    };
  } catch (err) {
    await staged.discard();
    if (op.signal.aborted) throw op.signal.reason;
    throw fromFsError(err, 'COMPRESS', target.rel);
  } finally {
    await Promise.all(opened.map((fh) => closeFile(fh).catch(() => undefined)));
  }
}

export interface DecompressOutput {
  operation: 'DECOMPRESS';
  format: 'zip' | 'gzip';
  /** The directory extracted into (zip) or the file written (gzip). */
  outputPath: string;
  files: number;
  bytes: number;
  /** Extracted paths (capped at listMaxEntries). */
  entries: string[];
  truncated: boolean;
}

/** Counts bytes through a stream and fails once they pass the cap (a zip bomb lies in its headers). */
class ByteLimit extends Transform {
  constructor(
    private readonly counter: { bytes: number },
    private readonly max: number,
    private readonly what: string,
  ) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.counter.bytes += chunk.length;
    if (this.counter.bytes > this.max) {
      cb(fileError('ARCHIVE_TOO_LARGE', `${this.what} expands past the limit of ${this.max} bytes; refused`));
      return;
    }
    cb(null, chunk);
  }
}

async function sniffFormat(op: FileOperationContext, src: CheckedPath): Promise<'zip' | 'gzip'> {
  const fh = await openChecked(op.root, src.real, O_READ, src.rel);
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await fh.read(head, 0, 4, 0);
    if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
    if (bytesRead === 4 && head[0] === 0x50 && head[1] === 0x4b && (head[2] === 3 || head[2] === 5))
      return 'zip';
    throw fileError('ARCHIVE_INVALID', `DECOMPRESS ${quote(src.rel)}: neither a zip nor a gzip file`);
  } finally {
    await closeFile(fh);
  }
}

/**
 * DECOMPRESS: a zip into the directory `targetPath`, or a gzip file to the file `targetPath` (or into
 * it when it is a directory, without the `.gz`). Format from `compressionFormat`, else the magic
 * bytes. Zip entries are all checked first — no absolute paths, `..`, symlinks or special files, none
 * landing on a symlink leading outside, sizes within `extractMaxBytes`/`extractMaxEntries` — then
 * extracted into a hidden staging directory and moved into place only once all of it succeeded.
 */
export async function decompressOperation(op: FileOperationContext): Promise<DecompressOutput> {
  const sources = await selectSources(op, { followFinal: true });
  requireFiles(sources, 'DECOMPRESS');
  const [src] = sources.items;
  if (!src || sources.items.length > 1) {
    throw invalidPayload(
      `DECOMPRESS takes one archive, but ${JSON.stringify(sources.spec)} matches ${sources.items.length}`,
    );
  }
  const format = op.payload.compressionFormat ?? (await sniffFormat(op, src));
  return format === 'gzip' ? gunzip(op, src) : unzip(op, src);
}

async function gunzip(op: FileOperationContext, src: CheckedPath): Promise<DecompressOutput> {
  const { payload: p, root } = op;
  const targetPath = p.targetPath ?? '';
  let target = await root.resolve(targetPath);
  if (target.stat?.isDirectory() || targetPath.endsWith('/')) {
    const name = basename(src.rel).replace(/\.gz(ip)?$/i, '');
    target = await root.resolve(joinRel(target.rel, name === basename(src.rel) ? `${name}.out` : name));
  }
  await fileTarget(op, target, 'DECOMPRESS');
  if (target.real === src.real)
    throw fileError('INVALID_TARGET', 'DECOMPRESS: the target is the archive itself');
  await ensureParent(root, target);
  const input = await openChecked(root, src.real, O_READ, src.rel);
  const staged = await StagedFile.create(root, target);
  const counter = { bytes: 0 };
  try {
    await pipeline(
      readStreamOf(input),
      createGunzip(),
      new ByteLimit(counter, op.limits.extractMaxBytes, `gzip file ${quote(src.rel)}`),
      writeStreamOf(staged.handle),
      { signal: op.signal },
    );
    await staged.commit(p.overwrite);
  } catch (err) {
    await staged.discard();
    if (op.signal.aborted) throw op.signal.reason;
    if (errnoOf(err) === 'Z_DATA_ERROR' || errnoOf(err) === 'Z_BUF_ERROR') {
      throw fileError(
        'ARCHIVE_INVALID',
        `DECOMPRESS ${quote(src.rel)}: not valid gzip data (${(err as Error).message})`,
        err,
      );
    }
    throw fromFsError(err, 'DECOMPRESS', src.rel);
  } finally {
    await closeFile(input);
  }
  return {
    operation: 'DECOMPRESS',
    format: 'gzip',
    outputPath: target.rel,
    files: 1,
    bytes: counter.bytes,
    entries: [target.rel],
    truncated: false,
  };
}

interface ZipPlanEntry {
  entry: yauzl.Entry;
  /** Normalised name inside the archive. */
  name: string;
  dir: boolean;
  dest: CheckedPath;
}

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

async function unzip(op: FileOperationContext, src: CheckedPath): Promise<DecompressOutput> {
  const { payload: p, root, limits } = op;
  const target = await root.resolve(p.targetPath ?? '');
  if (target.stat && !target.stat.isDirectory()) {
    throw fileError(
      'NOT_A_DIRECTORY',
      `DECOMPRESS target ${quote(target.rel)} must be a directory for a zip`,
    );
  }
  if (!target.stat) {
    await checkParent(target, p.createDirectories);
    if (!p.createDirectories) {
      throw fileError(
        'PARENT_NOT_FOUND',
        `DECOMPRESS target directory ${quote(target.rel)} does not exist; set createDirectories to create it`,
      );
    }
  }
  const fh = await openChecked(root, src.real, O_READ, src.rel);
  let zip: yauzl.ZipFile | undefined;
  let staging: string | undefined;
  try {
    try {
      zip = await openZip(fh, { decodeStrings: false });
    } catch (err) {
      throw fileError(
        'ARCHIVE_INVALID',
        `DECOMPRESS ${quote(src.rel)}: not a readable zip (${(err as Error).message})`,
        err,
      );
    }
    const plan = await planZip(op, src, target, zip);
    // Extract into a hidden directory beside the final place, then move everything in.
    const stagingParent = await nearestExisting(target.real);
    staging = path.join(stagingParent, `.chronos-extract-${randomBytes(6).toString('hex')}`);
    await mkdir(staging);
    const counter = { bytes: 0 };
    for (const item of plan) {
      if (op.signal.aborted) throw op.signal.reason;
      const staged = path.join(staging, ...item.name.split('/'));
      if (item.dir) {
        await mkdir(staged, { recursive: true });
        continue;
      }
      await mkdir(path.dirname(staged), { recursive: true });
      let stream: Readable;
      try {
        stream = await zip.openReadStreamPromise(item.entry);
      } catch (err) {
        throw fileError(
          'ARCHIVE_INVALID',
          `DECOMPRESS ${quote(src.rel)}: entry ${JSON.stringify(item.name)} is unreadable (${(err as Error).message})`,
          err,
        );
      }
      const unixMode = (item.entry.externalFileAttributes >>> 16) & 0o777;
      const out = await openChecked(root, staged, O_CREATE, item.dest.rel, unixMode === 0 ? 0o644 : unixMode);
      try {
        await pipeline(
          stream,
          new ByteLimit(counter, limits.extractMaxBytes, `zip ${quote(src.rel)}`),
          writeStreamOf(out),
          { signal: op.signal },
        );
      } catch (err) {
        if (op.signal.aborted || (err as { code?: string }).code === 'ARCHIVE_TOO_LARGE') throw err;
        if (errnoOf(err) === undefined || /zip|crc|size|inflat/i.test((err as Error).message)) {
          throw fileError(
            'ARCHIVE_INVALID',
            `DECOMPRESS ${quote(src.rel)}: entry ${JSON.stringify(item.name)} is corrupt (${(err as Error).message})`,
            err,
          );
        }
        throw err;
      } finally {
        await closeFile(out);
      }
    }
    // Everything extracted: move it into place.
    if (!target.stat) await makeDirectory(root, target.real);
    for (const item of plan) {
      if (op.signal.aborted) throw op.signal.reason;
      if (item.dir) {
        if (!(await exists(item.dest.real))) await makeDirectory(root, item.dest.real);
        continue;
      }
      const parent = path.dirname(item.dest.real);
      if (!(await exists(parent))) await makeDirectory(root, parent);
      await place(path.join(staging, ...item.name.split('/')), item.dest, p.overwrite);
    }
    const files = plan.filter((e) => !e.dir).map((e) => e.dest.rel);
    const kept = capped(files, limits.listMaxEntries);
    return {
      operation: 'DECOMPRESS',
      format: 'zip',
      outputPath: target.rel,
      files: files.length,
      bytes: counter.bytes,
      entries: kept.items,
      truncated: kept.truncated,
    };
  } catch (err) {
    if (op.signal.aborted) throw op.signal.reason;
    throw fromFsError(err, 'DECOMPRESS', src.rel);
  } finally {
    zip?.close();
    await closeFile(fh);
    if (staging) await rm(staging, { recursive: true, force: true }).catch(() => undefined);
  }
}

/** Puts a staged file at `dest`: rename with overwrite, else a hard link (fails if taken). */
async function place(staged: string, dest: CheckedPath, overwrite: boolean): Promise<void> {
  try {
    if (overwrite) {
      await rename(staged, dest.real);
    } else {
      await link(staged, dest.real);
      await unlink(staged);
    }
  } catch (err) {
    if (errnoOf(err) === 'EEXIST') {
      throw fileError(
        'TARGET_EXISTS',
        `DECOMPRESS: ${quote(dest.rel)} appeared meanwhile; set overwrite to replace it`,
      );
    }
    if (
      !overwrite &&
      ['EPERM', 'ENOTSUP', 'EOPNOTSUPP'].includes(errnoOf(err) ?? '') &&
      !(await exists(dest.real))
    ) {
      await rename(staged, dest.real);
      return;
    }
    throw fromFsError(err, 'DECOMPRESS into', dest.rel);
  }
}

/** The deepest existing directory on the way to `real` (inside the root: `real` was checked). */
async function nearestExisting(real: string): Promise<string> {
  let cur = real;
  while (!(await exists(cur))) cur = path.dirname(cur);
  return cur;
}

/** Reads the zip's central directory and checks every entry; nothing is written. */
async function planZip(
  op: FileOperationContext,
  src: CheckedPath,
  target: CheckedPath,
  zip: yauzl.ZipFile,
): Promise<ZipPlanEntry[]> {
  const { payload: p, root, limits } = op;
  const plan: ZipPlanEntry[] = [];
  const files = new Set<string>();
  const dirs = new Set<string>();
  let declared = 0;
  const what = `zip ${quote(src.rel)}`;
  try {
    for await (const entry of zip.eachEntry()) {
      if (op.signal.aborted) throw op.signal.reason;
      const raw = yauzl.getFileNameLowLevel(
        entry.generalPurposeBitFlag,
        entry.fileNameRaw,
        entry.extraFields,
        false,
      );
      if (plan.length >= limits.extractMaxEntries) {
        throw fileError(
          'ARCHIVE_TOO_LARGE',
          `${what} holds more than ${limits.extractMaxEntries} entries; refused`,
        );
      }
      const problem = relativePathProblem(raw);
      if (problem) {
        throw fileError(
          'PATH_OUTSIDE_ROOT',
          `${what}: entry ${JSON.stringify(raw)} refused, it leads outside the target (${problem.replace(/^must/, 'entries must')})`,
        );
      }
      const mode = (entry.externalFileAttributes >>> 16) & S_IFMT;
      const madeByUnix = entry.versionMadeBy >> 8 === 3;
      if (madeByUnix && mode === S_IFLNK) {
        throw fileError(
          'ARCHIVE_UNSAFE_ENTRY',
          `${what}: entry ${JSON.stringify(raw)} is a symlink; archives with symlinks are refused`,
        );
      }
      if (madeByUnix && mode !== 0 && mode !== S_IFREG && mode !== S_IFDIR) {
        throw fileError(
          'ARCHIVE_UNSAFE_ENTRY',
          `${what}: entry ${JSON.stringify(raw)} is a special file; refused`,
        );
      }
      if (entry.isEncrypted())
        throw fileError('ARCHIVE_UNSUPPORTED', `${what}: entry ${JSON.stringify(raw)} is encrypted`);
      if (!entry.canDecodeFileData()) {
        throw fileError(
          'ARCHIVE_UNSUPPORTED',
          `${what}: entry ${JSON.stringify(raw)} uses unsupported compression method ${entry.compressionMethod}`,
        );
      }
      const name = raw
        .split('/')
        .filter((s) => s !== '' && s !== '.')
        .join('/');
      if (name === '') continue;
      const dir = raw.endsWith('/') || (madeByUnix && mode === S_IFDIR);
      declared += entry.uncompressedSize;
      if (declared > limits.extractMaxBytes) {
        throw fileError(
          'ARCHIVE_TOO_LARGE',
          `${what} declares ${declared}+ bytes uncompressed, more than the limit of ${limits.extractMaxBytes}; refused`,
        );
      }
      const parts = name.split('/');
      for (let i = 1; i < parts.length; i++) dirs.add(parts.slice(0, i).join('/'));
      if (dir) dirs.add(name);
      else if (files.has(name))
        throw fileError('ARCHIVE_INVALID', `${what} holds ${JSON.stringify(name)} twice`);
      else files.add(name);
      const dest = await root.resolve(joinRel(target.rel, name));
      if (dest.stat) {
        if (dir && !dest.stat.isDirectory()) {
          throw fileError(
            'NOT_A_DIRECTORY',
            `${what}: directory entry ${JSON.stringify(name)} meets a ${entryType(dest.stat)} at ${quote(dest.rel)}`,
          );
        }
        if (!dir && !dest.stat.isFile()) {
          throw fileError(
            'NOT_A_FILE',
            `${what}: entry ${JSON.stringify(name)} meets a ${entryType(dest.stat)} at ${quote(dest.rel)}`,
          );
        }
        if (!dir && !p.overwrite) {
          throw fileError('TARGET_EXISTS', `${what}: ${quote(dest.rel)} exists; set overwrite to replace it`);
        }
      }
      plan.push({ entry, name, dir, dest });
    }
  } catch (err) {
    if (err instanceof ChronosError) throw err;
    if (op.signal.aborted) throw op.signal.reason;
    throw fileError('ARCHIVE_INVALID', `${what} is not a valid zip (${(err as Error).message})`, err);
  }
  for (const f of files) {
    if (dirs.has(f))
      throw fileError('ARCHIVE_INVALID', `${what} holds ${JSON.stringify(f)} both as a file and a directory`);
  }
  // Parents first, so directories exist before their files are moved in.
  return plan.sort((a, b) => (a.dir === b.dir ? 0 : a.dir ? -1 : 1));
}
