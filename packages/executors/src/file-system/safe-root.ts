import { constants, readdir as readdirCallback, realpath as realpathCallback, type Stats } from 'node:fs';
import { lstat, readdir, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import { relativePathProblem } from '@chronos/core';
import { glob, isDynamicPattern } from 'tinyglobby';
import { errnoOf, fileError, fromFsError, outsideRoot, quote } from './fs-errors.ts';

/** Flags for opening a checked path: the final component must not have become a symlink since. */
export const O_READ = constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
/** Creates a new file; fails if anything (a symlink included) is already there. */
export const O_CREATE = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;
export const O_APPEND = constants.O_WRONLY | constants.O_APPEND | constants.O_NOFOLLOW | constants.O_NONBLOCK;

/** The kernel's limit on symlinks followed while resolving one path. */
const MAX_SYMLINK_HOPS = 40;

export type EntryType = 'file' | 'directory' | 'symlink' | 'other';

/** Whether the absolute path `inner` is `outer` or below it. */
export function isWithin(outer: string, inner: string): boolean {
  return inner === outer || inner.startsWith(outer.endsWith(path.sep) ? outer : outer + path.sep);
}

export function entryType(st: Stats): EntryType {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'directory';
  if (st.isFile()) return 'file';
  return 'other';
}

/** A path checked to lie inside the root. */
export interface CheckedPath {
  /** Relative to the root, `/`-separated, normalised; '' is the root itself. */
  rel: string;
  /**
   * Absolute location with every symlink resolved (each one checked to stay inside the root); the
   * part that does not exist yet is appended as written. When `link` is set, the link itself.
   */
  real: string;
  /** lstat of `real`, or null when nothing is there. */
  stat: Stats | null;
  /** The final component is a symlink (inside the root) that was not followed. */
  link: boolean;
}

export interface ResolveOptions {
  /** Follow a symlink in the final component (it is checked either way). @defaultValue true */
  followFinal?: boolean;
}

export interface WalkEntry {
  /** Root-relative path. */
  rel: string;
  /** Relative to the walked directory. */
  sub: string;
  real: string;
  type: EntryType;
  /** lstat of the entry itself. */
  stat: Stats;
  /** For a symlink: the stat of what it points to (checked to be inside the root), null if dangling. */
  targetStat: Stats | null;
}

/**
 * FILE_JOBS_ROOT, with every path of a run resolved against its real path. Refuses absolute paths,
 * `..`, and symlinks (in any component) whose target leaves the root, before anything is touched.
 * Resolution walks the path one component at a time like the kernel does, so a `..` inside a
 * symlink's target is applied to the real directory it lives in.
 *
 * Operations then act on the resolved real paths (which hold no symlinks) and open the final
 * component with O_NOFOLLOW. What remains possible is a concurrent process swapping an
 * intermediate directory for a symlink between the check and the use; Node has no openat().
 */
export class SafeRoot {
  private constructor(readonly real: string) {}

  static async open(root: string | null | undefined): Promise<SafeRoot> {
    if (root === undefined || root === null || root.trim() === '') {
      throw fileError(
        'FILE_JOBS_ROOT_UNSET',
        'FILE_SYSTEM jobs need FILE_JOBS_ROOT: the directory all their paths are resolved in',
      );
    }
    let real: string;
    try {
      real = await realpath(path.resolve(root));
      if (!(await stat(real)).isDirectory())
        throw Object.assign(new Error('not a directory'), { code: 'ENOTDIR' });
    } catch (err) {
      throw fileError(
        'FILE_JOBS_ROOT_INVALID',
        `FILE_JOBS_ROOT (${root}) is not a usable directory: ${errnoOf(err) ?? String(err)}`,
        err,
      );
    }
    return new SafeRoot(real);
  }

  /** Whether an absolute, normalised path is the root or below it. */
  contains(abs: string): boolean {
    return isWithin(this.real, abs);
  }

  /** The root-relative, `/`-separated form of an absolute path inside the root. */
  relative(abs: string): string {
    return path.relative(this.real, abs).split(path.sep).join('/');
  }

  /**
   * Normalises a user path (relative, no `..`): `a//b/./c/` → `a/b/c`, `.` → ''.
   * @throws PATH_OUTSIDE_ROOT for an absolute path or a `..` segment.
   */
  static normalize(input: string): string {
    if (input.includes('\0'))
      throw fileError('INVALID_PATH', `path ${JSON.stringify(input)} contains a NUL character`);
    if (relativePathProblem(input)) {
      const absolute = /^([/\\]|[A-Za-z]:)/.test(input);
      throw outsideRoot(
        input,
        absolute ? 'it is absolute (paths are relative to FILE_JOBS_ROOT)' : "it contains '..'",
      );
    }
    return input
      .split('/')
      .filter((s) => s !== '' && s !== '.')
      .join('/');
  }

  /**
   * Resolves a root-relative path, following and checking every symlink on the way.
   * @throws PATH_OUTSIDE_ROOT naming `input` when the path or a symlink on it leads out of the root.
   */
  async resolve(input: string, options: ResolveOptions = {}): Promise<CheckedPath> {
    const rel = SafeRoot.normalize(input);
    const segments = rel === '' ? [] : rel.split('/').map((name) => ({ name, user: true }));
    const found = await this.walkSegments(input, this.real, segments, options.followFinal ?? true);
    return { rel, ...found };
  }

  /**
   * Walks `queue` from the real directory `start` one component at a time, like the kernel: a
   * symlink's target is spliced in (its `..` applied to the real directory holding it). `cur` is
   * always a real path inside the root.
   */
  private async walkSegments(
    input: string,
    start: string,
    queue: { name: string; user: boolean }[],
    followFinal: boolean,
  ): Promise<Omit<CheckedPath, 'rel'>> {
    let cur = start;
    let hops = 0;
    let lastLink = '';
    while (queue.length > 0) {
      const { name, user } = queue.shift()!;
      if (name === '' || name === '.') continue;
      if (name === '..') {
        // Only a symlink's target brings '..' here (user paths are refused for it).
        if (cur === this.real) throw outsideRoot(input, `${quote(lastLink)} is a symlink leading outside`);
        cur = path.dirname(cur);
        continue;
      }
      const next = path.join(cur, name);
      let st: Stats;
      try {
        st = await lstat(next);
      } catch (err) {
        if (errnoOf(err) !== 'ENOENT') throw fromFsError(err, 'resolve', input);
        // Nothing further exists, so nothing further can be a symlink.
        const rest = queue.map((q) => q.name).filter((n) => n !== '' && n !== '.');
        if (rest.includes('..')) {
          throw outsideRoot(input, `${quote(lastLink)} is a symlink through a missing directory`);
        }
        return { real: path.join(next, ...rest), stat: null, link: false };
      }
      if (!st.isSymbolicLink()) {
        cur = next;
        continue;
      }
      if (++hops > MAX_SYMLINK_HOPS) {
        throw fileError('SYMLINK_LOOP', `path ${JSON.stringify(input)}: too many levels of symbolic links`);
      }
      lastLink = this.relative(next);
      const target = this.linkTarget(input, lastLink, cur, await readlink(next));
      if (user && queue.length === 0 && !followFinal) {
        // Act on the link itself, but only if what it points to is inside the root too.
        await this.walkSegments(input, target.start, target.segments, true);
        return { real: next, stat: st, link: true };
      }
      cur = target.start;
      queue.unshift(...target.segments);
    }
    let st: Stats | null = null;
    try {
      st = await lstat(cur);
    } catch (err) {
      if (errnoOf(err) !== 'ENOENT') throw fromFsError(err, 'resolve', input);
    }
    return { real: cur, stat: st, link: false };
  }

  /**
   * Where a symlink in the real directory `dir` leads, as a walk: relative targets continue from
   * `dir`; absolute ones must lie inside the root and restart from it.
   */
  private linkTarget(
    input: string,
    linkRel: string,
    dir: string,
    target: string,
  ): { start: string; segments: { name: string; user: boolean }[] } {
    if (!path.isAbsolute(target)) {
      return { start: dir, segments: target.split('/').map((name) => ({ name, user: false })) };
    }
    // The root's real path holds no symlinks, so a '..'-free absolute target under it is inside.
    if (target.split('/').includes('..') || !this.contains(path.normalize(target))) {
      throw outsideRoot(input, `${quote(linkRel)} is a symlink leading outside`);
    }
    const segments = this.relative(path.normalize(target))
      .split('/')
      .filter((n) => n !== '')
      .map((name) => ({ name, user: false }));
    return { start: this.real, segments };
  }

  /**
   * Whether `input` is a glob (`*`, `?`, `[...]`, `{a,b}`, extglobs) rather than a plain path.
   */
  static isGlob(input: string): boolean {
    return isDynamicPattern(input);
  }

  /**
   * Root-relative paths matching a glob, dot files excluded, symlinks not followed. Directories the
   * crawl would enter through a symlink leading out of the root are refused (PATH_OUTSIDE_ROOT) and
   * never read. Matches nested under another match are dropped. Each match still has to be resolved.
   */
  async glob(pattern: string, signal: AbortSignal, maxMatches: number): Promise<string[]> {
    SafeRoot.normalize(pattern);
    const refused: string[] = [];
    const guardedReaddir = ((dir: string, options: unknown, callback: (...args: unknown[]) => void) => {
      realpathCallback(dir, (err, real) => {
        if (!err && !this.contains(real)) {
          refused.push(dir);
          callback(Object.assign(new Error(`${dir} is outside FILE_JOBS_ROOT`), { code: 'EACCES' }));
          return;
        }
        (readdirCallback as unknown as (d: string, o: unknown, cb: (...args: unknown[]) => void) => void)(
          dir,
          options,
          callback,
        );
      });
    }) as unknown as typeof readdirCallback;
    const matches = await glob(pattern, {
      cwd: this.real,
      dot: false,
      followSymbolicLinks: false,
      onlyFiles: false,
      expandDirectories: false,
      absolute: false,
      signal,
      fs: { readdir: guardedReaddir },
    });
    if (signal.aborted) throw signal.reason;
    const first = refused[0];
    if (first !== undefined) {
      const shown = this.contains(path.resolve(first)) ? this.relative(path.resolve(first)) : first;
      throw outsideRoot(pattern, `the glob would read the directory ${quote(shown)}, which leads outside`);
    }
    if (matches.length > maxMatches) {
      throw fileError(
        'TOO_MANY_ENTRIES',
        `glob ${JSON.stringify(pattern)} matches ${matches.length} paths, more than the limit of ${maxMatches}`,
      );
    }
    const rels = matches.map((m) => m.replace(/\/+$/, ''));
    for (const m of rels) {
      if (path.isAbsolute(m) || m.split('/').includes('..')) {
        throw outsideRoot(pattern, `it matches ${JSON.stringify(m)}`);
      }
    }
    rels.sort();
    const kept: string[] = [];
    for (const m of rels) {
      const last = kept[kept.length - 1];
      if (m === '' || (last !== undefined && (m === last || m.startsWith(`${last}/`)))) continue;
      kept.push(m);
    }
    return kept;
  }

  /**
   * Every entry below a real directory (depth first, sorted), symlinks checked but not descended.
   * @throws PATH_OUTSIDE_ROOT if any symlink below points outside; TOO_MANY_ENTRIES past `max`.
   */
  async walk(
    dir: CheckedPath,
    signal: AbortSignal,
    max: number,
    options: { stopAt?: number; recursive?: boolean } = {},
  ): Promise<WalkEntry[]> {
    const recursive = options.recursive ?? true;
    const out: WalkEntry[] = [];
    const visit = async (real: string, sub: string): Promise<boolean> => {
      let names: string[];
      try {
        names = (await readdir(real)).sort();
      } catch (err) {
        throw fromFsError(err, 'read directory', this.relative(real));
      }
      for (const name of names) {
        if (signal.aborted) throw signal.reason;
        const childReal = path.join(real, name);
        const childSub = sub === '' ? name : `${sub}/${name}`;
        const childRel = this.relative(childReal);
        let st: Stats;
        try {
          st = await lstat(childReal);
        } catch (err) {
          if (errnoOf(err) === 'ENOENT') continue; // removed meanwhile
          throw fromFsError(err, 'stat', childRel);
        }
        let targetStat: Stats | null = null;
        if (st.isSymbolicLink()) {
          const target = await this.resolve(childRel);
          targetStat = target.stat;
        }
        if (options.stopAt !== undefined && out.length >= options.stopAt) return false;
        out.push({
          rel: childRel,
          sub: childSub,
          real: childReal,
          type: entryType(st),
          stat: st,
          targetStat,
        });
        if (out.length > max) {
          throw fileError(
            'TOO_MANY_ENTRIES',
            `directory ${quote(dir.rel)} holds more than ${max} entries; narrow the path or pattern`,
          );
        }
        if (recursive && st.isDirectory() && !(await visit(childReal, childSub))) return false;
      }
      return true;
    };
    await visit(dir.real, '');
    return out;
  }

  /** The leading part of a glob that holds no pattern characters (`in/2024/*.csv` → `in/2024`). */
  static globBase(pattern: string): string {
    const parts = SafeRoot.normalize(pattern).split('/');
    const base: string[] = [];
    for (const part of parts.slice(0, -1)) {
      if (isDynamicPattern(part)) break;
      base.push(part);
    }
    return base.join('/');
  }
}
