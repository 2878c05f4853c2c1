import { cp, link, lstat, readdir, rename, rm, rmdir, unlink } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { errnoOf, fileError, fromFsError, quote } from './fs-errors.ts';
import {
  basename,
  capped,
  joinRel,
  relativeTo,
  selectSources,
  type FileOperationContext,
} from './operation-context.ts';
import { O_READ, entryType, isWithin, type CheckedPath } from './safe-root.ts';
import {
  StagedFile,
  checkParent,
  closeFile,
  exists,
  makeDirectory,
  openChecked,
  readStreamOf,
  writeStreamOf,
} from './staged-file.ts';

export interface TransferOutput {
  operation: 'COPY' | 'MOVE';
  /** Each selected source and where it went (directories count as one). */
  entries: { from: string; to: string }[];
  /** Files (and, for MOVE, symlinks and whole directories) transferred. */
  count: number;
  bytes: number;
  truncated: boolean;
  /** Entries of copied directories left out: symlinks to directories, dangling symlinks, devices, FIFOs. */
  skipped: string[];
}

interface FileStep {
  from: CheckedPath;
  to: CheckedPath;
}

interface Plan {
  /** Directories to create, parents first. */
  dirs: CheckedPath[];
  files: FileStep[];
  /** MOVE of a whole directory to a free place: one rename. */
  renames: FileStep[];
  /** MOVE merged these directories into existing ones: remove them once emptied. */
  emptied: CheckedPath[];
  entries: { from: string; to: string }[];
  skipped: string[];
  dests: Set<string>;
  bytes: number;
}

/**
 * Decides every step of a COPY/MOVE, checking every source and destination (symlinks, overwrite,
 * missing parents) before anything is touched.
 */
async function plan(
  op: FileOperationContext,
  operation: 'COPY' | 'MOVE',
): Promise<{ plan: Plan; makeTarget: CheckedPath | null }> {
  const { payload: p, root } = op;
  const isMove = operation === 'MOVE';
  const targetPath = p.targetPath ?? '';
  const sources = await selectSources(op, { followFinal: !isMove });
  const target = await root.resolve(targetPath);
  const targetIsDir = target.stat?.isDirectory() ?? false;
  const intoDir = sources.glob || targetPath.endsWith('/') || targetIsDir;
  let makeTarget: CheckedPath | null = null;
  if (intoDir && target.stat && !targetIsDir) {
    throw fileError(
      'NOT_A_DIRECTORY',
      `${operation} target ${quote(target.rel)} must be a directory for several sources`,
    );
  }
  if (intoDir && !target.stat) {
    await checkParent(target, p.createDirectories);
    if (!p.createDirectories) {
      throw fileError(
        'PARENT_NOT_FOUND',
        `${operation} target directory ${quote(target.rel)} does not exist; set createDirectories to create it`,
      );
    }
    makeTarget = target;
  }

  const out: Plan = {
    dirs: [],
    files: [],
    renames: [],
    emptied: [],
    entries: [],
    skipped: [],
    dests: new Set(),
    bytes: 0,
  };
  const claim = (from: CheckedPath, to: CheckedPath) => {
    if (out.dests.has(to.real)) {
      throw fileError('INVALID_TARGET', `${operation}: two sources would be written to ${quote(to.rel)}`);
    }
    out.dests.add(to.real);
    if (from.real === to.real) {
      throw fileError('INVALID_TARGET', `${operation} ${quote(from.rel)}: the target is the source itself`);
    }
  };
  const addFile = (from: CheckedPath, to: CheckedPath) => {
    if (to.stat) {
      if (to.stat.isDirectory()) {
        throw fileError(
          'NOT_A_FILE',
          `${operation} ${quote(from.rel)}: a directory is in the way at ${quote(to.rel)}`,
        );
      }
      if (!p.overwrite) {
        throw fileError(
          'TARGET_EXISTS',
          `${operation} ${quote(from.rel)}: ${quote(to.rel)} exists; set overwrite to replace it`,
        );
      }
    }
    claim(from, to);
    out.files.push({ from, to });
    if (from.stat && !from.link) out.bytes += from.stat.size;
  };

  for (const s of sources.items) {
    if (op.signal.aborted) throw op.signal.reason;
    const st = s.stat!;
    if (s.rel === '') throw fileError('INVALID_PATH', `${operation} refuses to take FILE_JOBS_ROOT itself`);
    const dest = intoDir
      ? await root.resolve(
          joinRel(target.rel, sources.glob ? relativeTo(sources.base, s.rel) : basename(s.rel)),
        )
      : target;
    if (!intoDir) await checkParent(dest, p.createDirectories);
    if (isWithin(s.real, dest.real)) {
      throw fileError(
        'INVALID_TARGET',
        `${operation} ${quote(s.rel)} → ${quote(dest.rel)}: the target is the source or inside it`,
      );
    }
    out.entries.push({ from: s.rel, to: dest.rel });
    const isDir = st.isDirectory() && !s.link;
    if (!isDir) {
      if (!s.link && !st.isFile())
        throw fileError(
          'NOT_A_FILE',
          `${operation} ${quote(s.rel)}: a ${entryType(st)} cannot be transferred`,
        );
      addFile(s, dest);
      continue;
    }
    if (!isMove && !p.recursive) {
      throw fileError(
        'RECURSIVE_REQUIRED',
        `COPY ${quote(s.rel)}: it is a directory; set recursive to copy it with its content`,
      );
    }
    if (dest.stat && !dest.stat.isDirectory()) {
      throw fileError(
        'NOT_A_DIRECTORY',
        `${operation} ${quote(s.rel)}: a ${entryType(dest.stat)} is in the way at ${quote(dest.rel)}`,
      );
    }
    if (isMove && !dest.stat) {
      claim(s, dest);
      out.renames.push({ from: s, to: dest });
      continue;
    }
    // COPY, or MOVE merging into an existing directory: file by file.
    if (!dest.stat) out.dirs.push(dest);
    const entries = await root.walk(s, op.signal, op.limits.maxWalkEntries);
    for (const e of entries) {
      const to = await root.resolve(joinRel(dest.rel, e.sub));
      const from: CheckedPath = { rel: e.rel, real: e.real, stat: e.stat, link: e.type === 'symlink' };
      if (e.type === 'directory') {
        if (to.stat && !to.stat.isDirectory()) {
          throw fileError(
            'NOT_A_DIRECTORY',
            `${operation} ${quote(e.rel)}: a ${entryType(to.stat)} is in the way at ${quote(to.rel)}`,
          );
        }
        if (!to.stat) out.dirs.push(to);
      } else if (e.type === 'file') {
        addFile(from, to);
      } else if (e.type === 'symlink' && isMove) {
        addFile(from, to);
      } else if (e.type === 'symlink' && e.targetStat?.isFile()) {
        addFile(await root.resolve(e.rel), to); // copied as the file it points to (inside the root)
      } else {
        out.skipped.push(e.rel);
      }
    }
    if (isMove) out.emptied.push(s);
  }
  return { plan: out, makeTarget };
}

/** Copies a checked file's bytes to a staged destination, keeping its mode. */
export async function copyFile(
  op: FileOperationContext,
  from: CheckedPath,
  to: CheckedPath,
  overwrite: boolean,
): Promise<number> {
  const src = await openChecked(op.root, from.real, O_READ, from.rel);
  try {
    const st = await src.stat();
    if (!st.isFile()) throw fileError('NOT_A_FILE', `${quote(from.rel)} is not a regular file`);
    const staged = await StagedFile.create(op.root, to, st.mode & 0o7777);
    try {
      await pipeline(readStreamOf(src), writeStreamOf(staged.handle), { signal: op.signal });
      await staged.commit(overwrite);
    } catch (err) {
      await staged.discard();
      throw err;
    }
    return st.size;
  } catch (err) {
    if (op.signal.aborted) throw op.signal.reason;
    throw fromFsError(err, 'copy', from.rel);
  } finally {
    await closeFile(src);
  }
}

/** Moves one file or symlink; without overwrite a hard link makes the no-clobber check atomic. */
async function moveFile(op: FileOperationContext, step: FileStep, overwrite: boolean): Promise<void> {
  const { from, to } = step;
  try {
    if (overwrite) {
      await rename(from.real, to.real);
      return;
    }
    await link(from.real, to.real);
    await unlink(from.real);
  } catch (err) {
    const code = errnoOf(err);
    if (code === 'EEXIST') {
      throw fileError(
        'TARGET_EXISTS',
        `MOVE ${quote(from.rel)}: ${quote(to.rel)} appeared meanwhile; set overwrite to replace it`,
      );
    }
    if (code === 'EXDEV' || code === 'EPERM' || code === 'ENOTSUP' || code === 'EOPNOTSUPP') {
      // Another device, or no hard links: copy then remove (a symlink is recreated by cp as is).
      if (!overwrite && (await exists(to.real))) {
        throw fileError(
          'TARGET_EXISTS',
          `MOVE ${quote(from.rel)}: ${quote(to.rel)} exists; set overwrite to replace it`,
        );
      }
      if (from.link) {
        await cp(from.real, to.real, { verbatimSymlinks: true, force: overwrite, errorOnExist: !overwrite });
      } else {
        await copyFile(op, from, to, overwrite);
      }
      await unlink(from.real);
      return;
    }
    throw fromFsError(err, 'MOVE', from.rel);
  }
}

async function ensureDirOf(op: FileOperationContext, real: string): Promise<void> {
  const parent = path.dirname(real);
  if (!(await exists(parent))) await makeDirectory(op.root, parent);
}

async function run(op: FileOperationContext, operation: 'COPY' | 'MOVE'): Promise<TransferOutput> {
  const { plan: steps, makeTarget } = await plan(op, operation);
  const overwrite = op.payload.overwrite;
  if (steps.skipped.length > 0) {
    op.log.warn(`${operation} leaves out ${steps.skipped.length} entries that are not regular files`, {
      skipped: steps.skipped.slice(0, 20),
    });
  }
  if (makeTarget) await makeDirectory(op.root, makeTarget.real);
  for (const dir of steps.dirs) await makeDirectory(op.root, dir.real);
  let count = 0;
  for (const step of steps.renames) {
    if (op.signal.aborted) throw op.signal.reason;
    await ensureDirOf(op, step.to.real);
    try {
      await rename(step.from.real, step.to.real);
    } catch (err) {
      if (errnoOf(err) !== 'EXDEV') throw fromFsError(err, 'MOVE', step.from.rel);
      await cp(step.from.real, step.to.real, {
        recursive: true,
        verbatimSymlinks: true,
        errorOnExist: true,
        force: false,
      });
      await rm(step.from.real, { recursive: true });
    }
    count++;
  }
  for (const step of steps.files) {
    if (op.signal.aborted) throw op.signal.reason;
    await ensureDirOf(op, step.to.real);
    if (operation === 'COPY') await copyFile(op, step.from, step.to, overwrite);
    else await moveFile(op, step, overwrite);
    count++;
  }
  for (const dir of steps.emptied) await removeEmptyDirs(dir.real);
  const kept = capped(steps.entries, op.limits.listMaxEntries);
  return {
    operation,
    entries: kept.items,
    count,
    bytes: steps.bytes,
    truncated: kept.truncated,
    skipped: capped(steps.skipped, op.limits.listMaxEntries).items,
  };
}

/** Removes a directory tree that holds only (empty) directories; anything left stays. */
async function removeEmptyDirs(real: string): Promise<void> {
  let names: string[] = [];
  try {
    names = await readdir(real);
  } catch {
    return;
  }
  for (const name of names) {
    const child = path.join(real, name);
    const st = await lstat(child).catch(() => null);
    if (st?.isDirectory()) await removeEmptyDirs(child);
  }
  await rmdir(real).catch(() => undefined);
}

/** COPY: files, globs and (with `recursive`) directories to `targetPath`. */
export function copyOperation(op: FileOperationContext): Promise<TransferOutput> {
  return run(op, 'COPY');
}

/** MOVE: files, symlinks (as links), globs and directories to `targetPath`. */
export function moveOperation(op: FileOperationContext): Promise<TransferOutput> {
  return run(op, 'MOVE');
}
