import { createHash } from 'node:crypto';
import {
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  realpath,
  rm,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { FileSystemPayloadInput } from '@chronos/core';
import { expect } from 'vitest';
import {
  createFileSystemExecutor,
  type FileSystemExecutorOptions,
  type FileSystemOutput,
} from '../src/file-system.ts';
import { makeCtx, rejection } from './helpers.ts';

/** A fresh FILE_JOBS_ROOT, and a sibling directory standing for "outside the root". */
export interface Sandbox {
  root: string;
  outside: string;
  cleanup(): Promise<void>;
}

export async function sandbox(): Promise<Sandbox> {
  const base = await realpath(await mkdtemp(path.join(tmpdir(), 'chronos-fs-')));
  const root = path.join(base, 'root');
  const outside = path.join(base, 'outside');
  await mkdir(root);
  await mkdir(outside);
  await writeFile(path.join(outside, 'secret.txt'), 'top secret');
  return { root, outside, cleanup: () => rm(base, { recursive: true, force: true }) };
}

/** Writes `content` at `rel` under `dir`, creating parents. */
export async function put(dir: string, rel: string, content: string | Buffer = ''): Promise<string> {
  const file = path.join(dir, rel);
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, content);
  return file;
}

export async function text(dir: string, rel: string): Promise<string> {
  return readFile(path.join(dir, rel), 'utf8');
}

/**
 * Every entry below `dir` (symlinks not followed): type, size, content hash, link target, mode.
 * Two equal snapshots mean nothing was created, changed or removed.
 */
export async function snapshot(dir: string): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  const visit = async (abs: string, rel: string) => {
    for (const name of (await readdir(abs)).sort()) {
      const childAbs = path.join(abs, name);
      const childRel = rel ? `${rel}/${name}` : name;
      const st = await lstat(childAbs);
      if (st.isSymbolicLink()) out[childRel] = `link -> ${await readlink(childAbs)}`;
      else if (st.isDirectory()) {
        out[childRel] = `dir ${(st.mode & 0o777).toString(8)}`;
        await visit(childAbs, childRel);
      } else {
        const hash = createHash('sha256')
          .update(await readFile(childAbs))
          .digest('hex')
          .slice(0, 16);
        out[childRel] = `file ${st.size} ${hash} ${st.mtimeMs}`;
      }
    }
  };
  await visit(dir, '');
  return out;
}

export function executor(root: string, options: Omit<FileSystemExecutorOptions, 'root'> = {}) {
  return createFileSystemExecutor({ root, ...options });
}

/** Runs one FILE_SYSTEM payload and returns its output. */
export async function run(
  root: string,
  payload: FileSystemPayloadInput,
  options: Omit<FileSystemExecutorOptions, 'root'> = {},
  ctx = makeCtx(),
): Promise<FileSystemOutput> {
  const result = await executor(root, options)(payload, ctx);
  return result.output as FileSystemOutput;
}

/** Runs a payload expected to fail; returns the error. */
export function failure(
  root: string,
  payload: FileSystemPayloadInput,
  options: Omit<FileSystemExecutorOptions, 'root'> = {},
): Promise<Error & Record<string, unknown>> {
  return rejection(() => run(root, payload, options));
}

/**
 * Runs a payload expected to be refused and checks that neither the root nor the outside directory
 * changed; returns the error.
 */
export async function refused(
  box: Sandbox,
  payload: FileSystemPayloadInput,
  options: Omit<FileSystemExecutorOptions, 'root'> = {},
): Promise<Error & Record<string, unknown>> {
  const before = { root: await snapshot(box.root), outside: await snapshot(box.outside) };
  const err = await failure(box.root, payload, options);
  expect({ root: await snapshot(box.root), outside: await snapshot(box.outside) }).toEqual(before);
  return err;
}
