import { randomBytes } from 'node:crypto';
import {
  link,
  lstat,
  mkdir,
  open,
  readlink,
  realpath,
  rename,
  unlink,
  type FileHandle,
} from 'node:fs/promises';
import path from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { errnoOf, fileError, fromFsError, outsideRoot, quote } from './fs-errors.ts';
import { O_CREATE, type CheckedPath, type SafeRoot } from './safe-root.ts';

/** A hidden name beside `finalReal` (dot files are invisible to globs). */
function tempNameBeside(finalReal: string): string {
  const base = path.basename(finalReal).slice(0, 100);
  return path.join(path.dirname(finalReal), `.${base}.chronos-${randomBytes(6).toString('hex')}.tmp`);
}

const streamsOf = new WeakMap<FileHandle, (Readable | Writable)[]>();

function remember<S extends Readable | Writable>(fh: FileHandle, stream: S): S {
  const list = streamsOf.get(fh) ?? [];
  list.push(stream);
  streamsOf.set(fh, list);
  return stream;
}

/** A read stream over a handle; `closeFile` releases it. */
export function readStreamOf(
  fh: FileHandle,
  options: { start?: number; highWaterMark?: number } = {},
): Readable {
  return remember(fh, fh.createReadStream({ start: 0, ...options, autoClose: false }));
}

/** A write stream over a handle; `closeFile` releases it. */
export function writeStreamOf(fh: FileHandle): Writable {
  return remember(fh, fh.createWriteStream({ autoClose: false }));
}

/**
 * Closes a handle. Streams made from it are destroyed first: each holds a reference that would
 * make `close()` wait forever.
 */
export async function closeFile(fh: FileHandle): Promise<void> {
  for (const stream of streamsOf.get(fh) ?? []) stream.destroy();
  streamsOf.delete(fh);
  await fh.close();
}

/**
 * Opens a checked real path and, where /proc tells, verifies the descriptor really lies inside the
 * root (a directory on the way may have been swapped for a symlink since the check).
 */
export async function openChecked(
  root: SafeRoot,
  real: string,
  flags: number,
  rel: string,
  mode = 0o644,
): Promise<FileHandle> {
  let fh: FileHandle;
  try {
    fh = await open(real, flags, mode);
  } catch (err) {
    throw fromFsError(err, 'open', rel);
  }
  let actual: string | null = null;
  try {
    actual = await readlink(`/proc/self/fd/${fh.fd}`);
  } catch {
    // No /proc: rely on the checks made before opening.
  }
  if (actual !== null && actual.startsWith('/') && !root.contains(actual)) {
    await closeFile(fh);
    throw outsideRoot(rel, 'a directory on it was replaced by a symlink leading outside');
  }
  return fh;
}

/**
 * A file written under a temporary hidden name beside its destination and put in place by
 * `commit()`: readers never see a half-written file, and a failed run leaves nothing behind.
 */
export class StagedFile {
  private closed = false;
  private constructor(
    readonly tempPath: string,
    readonly finalPath: string,
    readonly rel: string,
    readonly handle: FileHandle,
  ) {}

  static async create(root: SafeRoot, dest: CheckedPath, mode?: number): Promise<StagedFile> {
    const tempPath = tempNameBeside(dest.real);
    const handle = await openChecked(root, tempPath, O_CREATE, dest.rel);
    const staged = new StagedFile(tempPath, dest.real, dest.rel, handle);
    if (mode !== undefined) {
      // Keep the mode of the file replaced or copied (open() would apply the umask).
      await handle.chmod(mode).catch(async (err: unknown) => {
        await staged.discard();
        throw fromFsError(err, 'write', dest.rel);
      });
    }
    return staged;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await closeFile(this.handle);
  }

  /**
   * Puts the file in place. Without `overwrite` a hard link makes it appear only if nothing is
   * there (atomically); with it, a rename replaces what is there (a symlink itself, never its target).
   */
  async commit(overwrite: boolean): Promise<void> {
    await this.close();
    try {
      if (overwrite) {
        await rename(this.tempPath, this.finalPath);
        return;
      }
      try {
        await link(this.tempPath, this.finalPath);
      } catch (err) {
        const code = errnoOf(err);
        if (code !== 'EPERM' && code !== 'ENOTSUP' && code !== 'EXDEV' && code !== 'EOPNOTSUPP') throw err;
        // A file system without hard links: check, then rename.
        if (await exists(this.finalPath)) throw Object.assign(new Error('exists'), { code: 'EEXIST' });
        await rename(this.tempPath, this.finalPath);
        return;
      }
      await unlink(this.tempPath);
    } catch (err) {
      await this.discard();
      if (errnoOf(err) === 'EEXIST') {
        throw fileError(
          'TARGET_EXISTS',
          `${quote(this.rel)} appeared while the run wrote it; set overwrite to replace it`,
        );
      }
      throw fromFsError(err, 'write', this.rel);
    }
  }

  /** Removes the temporary file (errors ignored: this runs on failure paths). */
  async discard(): Promise<void> {
    await this.close().catch(() => undefined);
    await unlink(this.tempPath).catch(() => undefined);
  }
}

export async function exists(real: string): Promise<boolean> {
  try {
    await lstat(real);
    return true;
  } catch (err) {
    if (errnoOf(err) === 'ENOENT') return false;
    throw err;
  }
}

/**
 * Checks, without touching anything, that `dest`'s parent directory exists or may be created.
 * @throws PARENT_NOT_FOUND / NOT_A_DIRECTORY
 */
export async function checkParent(dest: CheckedPath, createDirectories: boolean): Promise<void> {
  const parent = path.dirname(dest.real);
  let st;
  try {
    st = await lstat(parent);
  } catch (err) {
    if (errnoOf(err) !== 'ENOENT') throw fromFsError(err, 'stat the parent of', dest.rel);
    if (!createDirectories) {
      throw fileError(
        'PARENT_NOT_FOUND',
        `the directory of ${quote(dest.rel)} does not exist; set createDirectories to create it`,
      );
    }
    return;
  }
  if (!st.isDirectory()) {
    throw fileError('NOT_A_DIRECTORY', `the parent of ${quote(dest.rel)} is not a directory`);
  }
}

/**
 * Creates a checked directory (real path) and its missing parents, then checks it resolves to
 * itself: a symlink slipped in meanwhile would otherwise redirect the writes.
 */
export async function makeDirectory(root: SafeRoot, dirReal: string): Promise<void> {
  const rel = root.relative(dirReal);
  try {
    await mkdir(dirReal, { recursive: true });
  } catch (err) {
    throw fromFsError(err, 'create directory', rel);
  }
  let actual: string;
  try {
    actual = await realpath(dirReal);
  } catch (err) {
    throw fromFsError(err, 'create directory', rel);
  }
  if (actual !== dirReal || !root.contains(actual)) {
    throw fileError('PATH_CHANGED', `directory ${quote(rel)} changed while the run created it`);
  }
}

/** Makes sure the parent of `dest` exists (after `checkParent` allowed creating it). */
export async function ensureParent(root: SafeRoot, dest: CheckedPath): Promise<void> {
  const parentReal = path.dirname(dest.real);
  if (!(await exists(parentReal))) await makeDirectory(root, parentReal);
}
