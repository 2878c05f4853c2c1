import { chmod, lstat, mkdir, readdir, readlink, symlink } from 'node:fs/promises';
import path from 'node:path';
import { PermanentJobError, RetryableJobError } from '@chronos/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createFileSystemExecutor } from '../src/file-system.ts';
import { failure, put, run, sandbox, snapshot, text, type Sandbox } from './file-system-helpers.ts';
import { makeCtx, rejection } from './helpers.ts';

let box: Sandbox;
beforeEach(async () => {
  box = await sandbox();
});
afterEach(async () => {
  await box.cleanup();
});

describe('FILE_SYSTEM executor: configuration and payload', () => {
  it('fails every run with FILE_JOBS_ROOT_UNSET when no root is configured', async () => {
    for (const root of [undefined, null, '', '  ']) {
      const err = await rejection(() =>
        createFileSystemExecutor({ root })({ fileOperation: 'LIST', filePath: '.' }, makeCtx()),
      );
      expect(err).toBeInstanceOf(PermanentJobError);
      expect(err.code).toBe('FILE_JOBS_ROOT_UNSET');
    }
  });

  it('fails with FILE_JOBS_ROOT_INVALID when the root is not a directory', async () => {
    const err = await failure(path.join(box.outside, 'secret.txt'), { fileOperation: 'LIST', filePath: '.' });
    expect(err.code).toBe('FILE_JOBS_ROOT_INVALID');
  });

  it('refuses an invalid payload with INVALID_PAYLOAD naming the fields', async () => {
    const err = await failure(box.root, { fileOperation: 'COPY', filePath: 'a' } as never);
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err.code).toBe('INVALID_PAYLOAD');
    expect(err.message).toContain('targetPath: is required for COPY');
  });

  it('logs one line per operation', async () => {
    await put(box.root, 'a.txt', 'x');
    const ctx = makeCtx();
    await run(box.root, { fileOperation: 'COPY', filePath: 'a.txt', targetPath: 'b.txt' }, {}, ctx);
    expect(ctx.log.lines).toEqual([
      {
        level: 'info',
        msg: 'FILE_SYSTEM COPY a.txt -> b.txt',
        context: expect.objectContaining({ count: 1, bytes: 1 }),
      },
    ]);
  });

  it('rejects with the signal reason when aborted before starting', async () => {
    const ac = new AbortController();
    ac.abort(new Error('cancelled'));
    const err = await rejection(() =>
      createFileSystemExecutor({ root: box.root })(
        { fileOperation: 'LIST', filePath: '.' },
        makeCtx({ signal: ac.signal }),
      ),
    );
    expect(err.message).toBe('cancelled');
  });
});

describe('READ', () => {
  it('returns the content and size of a file', async () => {
    await put(box.root, 'in/a.txt', 'héllo');
    expect(await run(box.root, { fileOperation: 'READ', filePath: 'in/a.txt' })).toEqual({
      operation: 'READ',
      path: 'in/a.txt',
      size: 6,
      content: 'héllo',
      encoding: 'utf8',
      truncated: false,
    });
  });

  it('caps the content and says so, without splitting a character', async () => {
    await put(box.root, 'big.txt', 'aé'.repeat(100));
    const out = await run(box.root, { fileOperation: 'READ', filePath: 'big.txt' }, { readMaxBytes: 4 });
    expect(out).toMatchObject({ size: 300, content: 'aéa', truncated: true });
  });

  it('returns binary content as base64', async () => {
    await put(box.root, 'b.bin', Buffer.from([0, 1, 2, 255]));
    expect(await run(box.root, { fileOperation: 'READ', filePath: 'b.bin' })).toMatchObject({
      content: 'AAEC/w==',
      encoding: 'base64',
    });
  });

  it('reads every file a glob matches', async () => {
    await put(box.root, 'in/a.csv', 'a');
    await put(box.root, 'in/b.csv', 'bb');
    await put(box.root, 'in/c.txt', 'c');
    const out = await run(box.root, { fileOperation: 'READ', filePath: 'in/*.csv' });
    expect(out).toEqual({
      operation: 'READ',
      truncated: false,
      files: [
        expect.objectContaining({ path: 'in/a.csv', content: 'a' }),
        expect.objectContaining({ path: 'in/b.csv', content: 'bb' }),
      ],
    });
  });

  it('fails with FILE_NOT_FOUND (retryable) for a missing file, NOT_A_FILE for a directory', async () => {
    const missing = await failure(box.root, { fileOperation: 'READ', filePath: 'nope.txt' });
    expect(missing).toBeInstanceOf(RetryableJobError);
    expect(missing.code).toBe('FILE_NOT_FOUND');
    await mkdir(path.join(box.root, 'dir'));
    expect((await failure(box.root, { fileOperation: 'READ', filePath: 'dir' })).code).toBe('NOT_A_FILE');
    expect((await failure(box.root, { fileOperation: 'READ', filePath: '*.none' })).code).toBe(
      'FILE_NOT_FOUND',
    );
  });

  it('follows a symlink that stays inside the root', async () => {
    await put(box.root, 'data/real.txt', 'inside');
    await symlink('data/real.txt', path.join(box.root, 'alias.txt'));
    expect(await run(box.root, { fileOperation: 'READ', filePath: 'alias.txt' })).toMatchObject({
      path: 'alias.txt',
      content: 'inside',
    });
  });
});

describe('WRITE and APPEND', () => {
  it('writes a new file', async () => {
    expect(
      await run(box.root, { fileOperation: 'WRITE', filePath: 'out.txt', fileContent: 'hello' }),
    ).toEqual({
      operation: 'WRITE',
      path: 'out.txt',
      bytesWritten: 5,
      created: true,
    });
    expect(await text(box.root, 'out.txt')).toBe('hello');
    // No temporary file left beside it.
    expect(await readdir(box.root)).toEqual(['out.txt']);
  });

  it('refuses to replace a file unless overwrite, and keeps its mode when replacing', async () => {
    const file = await put(box.root, 'out.txt', 'old');
    await chmod(file, 0o600);
    const err = await failure(box.root, { fileOperation: 'WRITE', filePath: 'out.txt', fileContent: 'new' });
    expect(err.code).toBe('TARGET_EXISTS');
    expect(await text(box.root, 'out.txt')).toBe('old');
    const out = await run(box.root, {
      fileOperation: 'WRITE',
      filePath: 'out.txt',
      fileContent: 'new',
      overwrite: true,
    });
    expect(out).toMatchObject({ created: false });
    expect(await text(box.root, 'out.txt')).toBe('new');
    expect((await lstat(file)).mode & 0o777).toBe(0o600);
  });

  it('creates missing directories only with createDirectories', async () => {
    const err = await failure(box.root, { fileOperation: 'WRITE', filePath: 'a/b/c.txt', fileContent: 'x' });
    expect(err.code).toBe('PARENT_NOT_FOUND');
    expect(await readdir(box.root)).toEqual([]);
    await run(box.root, {
      fileOperation: 'WRITE',
      filePath: 'a/b/c.txt',
      fileContent: 'x',
      createDirectories: true,
    });
    expect(await text(box.root, 'a/b/c.txt')).toBe('x');
  });

  it('refuses to write over a directory or the root itself', async () => {
    await mkdir(path.join(box.root, 'd'));
    const dir = await failure(box.root, {
      fileOperation: 'WRITE',
      filePath: 'd',
      fileContent: 'x',
      overwrite: true,
    });
    expect(dir.code).toBe('NOT_A_FILE');
    expect((await failure(box.root, { fileOperation: 'WRITE', filePath: '.', fileContent: 'x' })).code).toBe(
      'INVALID_PATH',
    );
  });

  it('appends to a file, creating it if missing', async () => {
    expect(await run(box.root, { fileOperation: 'APPEND', filePath: 'log.txt', fileContent: 'a\n' })).toEqual(
      {
        operation: 'APPEND',
        path: 'log.txt',
        bytesAppended: 2,
        size: 2,
        created: true,
      },
    );
    expect(
      await run(box.root, { fileOperation: 'APPEND', filePath: 'log.txt', fileContent: 'b\n' }),
    ).toMatchObject({
      size: 4,
      created: false,
    });
    expect(await text(box.root, 'log.txt')).toBe('a\nb\n');
    const err = await failure(box.root, { fileOperation: 'APPEND', filePath: 'x/log.txt', fileContent: 'a' });
    expect(err.code).toBe('PARENT_NOT_FOUND');
  });
});

describe('MKDIR', () => {
  it('creates a directory; parents and an existing one only with createDirectories', async () => {
    expect(await run(box.root, { fileOperation: 'MKDIR', filePath: 'd' })).toEqual({
      operation: 'MKDIR',
      path: 'd',
      created: true,
    });
    expect((await failure(box.root, { fileOperation: 'MKDIR', filePath: 'd' })).code).toBe('TARGET_EXISTS');
    expect(
      await run(box.root, { fileOperation: 'MKDIR', filePath: 'd', createDirectories: true }),
    ).toMatchObject({
      created: false,
    });
    expect((await failure(box.root, { fileOperation: 'MKDIR', filePath: 'x/y/z' })).code).toBe(
      'PARENT_NOT_FOUND',
    );
    await run(box.root, { fileOperation: 'MKDIR', filePath: 'x/y/z', createDirectories: true });
    expect((await lstat(path.join(box.root, 'x/y/z'))).isDirectory()).toBe(true);
  });
});

describe('LIST', () => {
  beforeEach(async () => {
    await put(box.root, 'in/a.csv', 'aaa');
    await put(box.root, 'in/b.txt', 'b');
    await put(box.root, 'in/sub/c.csv', 'cc');
    await put(box.root, 'in/.hidden', 'h');
  });

  it('lists a directory (name, type, size, mtime)', async () => {
    const out = await run(box.root, { fileOperation: 'LIST', filePath: 'in' });
    expect(out).toEqual({
      operation: 'LIST',
      path: 'in',
      count: 4,
      truncated: false,
      entries: [
        { path: 'in/.hidden', name: '.hidden', type: 'file', size: 1, mtime: expect.any(String) },
        { path: 'in/a.csv', name: 'a.csv', type: 'file', size: 3, mtime: expect.any(String) },
        { path: 'in/b.txt', name: 'b.txt', type: 'file', size: 1, mtime: expect.any(String) },
        {
          path: 'in/sub',
          name: 'sub',
          type: 'directory',
          size: expect.any(Number),
          mtime: expect.any(String),
        },
      ],
    });
  });

  it('lists recursively, and caps the entries', async () => {
    const out = await run(box.root, { fileOperation: 'LIST', filePath: 'in', recursive: true });
    expect(out).toMatchObject({ count: 5 });
    expect((out as { entries: { path: string }[] }).entries.map((e) => e.path)).toContain('in/sub/c.csv');
    const cappedOut = await run(
      box.root,
      { fileOperation: 'LIST', filePath: 'in', recursive: true },
      { listMaxEntries: 2 },
    );
    expect(cappedOut).toMatchObject({ count: 2, truncated: true });
  });

  it('lists glob matches (dot files excluded), and filePattern inside filePath', async () => {
    const glob = await run(box.root, { fileOperation: 'LIST', filePath: 'in/**/*.csv' });
    expect((glob as { entries: { path: string }[] }).entries.map((e) => e.path)).toEqual([
      'in/a.csv',
      'in/sub/c.csv',
    ]);
    const flat = await run(box.root, { fileOperation: 'LIST', filePath: 'in', filePattern: '*.csv' });
    expect((flat as { entries: { path: string }[] }).entries.map((e) => e.path)).toEqual(['in/a.csv']);
    const deep = await run(box.root, {
      fileOperation: 'LIST',
      filePath: 'in',
      filePattern: '*.csv',
      recursive: true,
    });
    expect((deep as { entries: { path: string }[] }).entries.map((e) => e.path)).toEqual([
      'in/a.csv',
      'in/sub/c.csv',
    ]);
    const none = await run(box.root, { fileOperation: 'LIST', filePath: 'in/*.xlsx' });
    expect(none).toMatchObject({ count: 0, entries: [] });
  });

  it('shows a symlink inside the root as a symlink', async () => {
    await symlink('a.csv', path.join(box.root, 'in/link.csv'));
    const out = await run(box.root, { fileOperation: 'LIST', filePath: 'in' });
    expect((out as { entries: unknown[] }).entries).toContainEqual(
      expect.objectContaining({ name: 'link.csv', type: 'symlink', targetType: 'file', size: 3 }),
    );
  });
});

describe('DELETE', () => {
  it('deletes a file, and counts a missing one as nothing deleted', async () => {
    await put(box.root, 'a.txt');
    expect(await run(box.root, { fileOperation: 'DELETE', filePath: 'a.txt' })).toEqual({
      operation: 'DELETE',
      deleted: ['a.txt'],
      count: 1,
      truncated: false,
    });
    expect(await run(box.root, { fileOperation: 'DELETE', filePath: 'a.txt' })).toMatchObject({ count: 0 });
  });

  it('deletes a non-empty directory only with recursive', async () => {
    await put(box.root, 'd/x/y.txt');
    const err = await failure(box.root, { fileOperation: 'DELETE', filePath: 'd' });
    expect(err.code).toBe('RECURSIVE_REQUIRED');
    expect(await text(box.root, 'd/x/y.txt')).toBe('');
    await run(box.root, { fileOperation: 'DELETE', filePath: 'd', recursive: true });
    expect(await readdir(box.root)).toEqual([]);
    await mkdir(path.join(box.root, 'empty'));
    await run(box.root, { fileOperation: 'DELETE', filePath: 'empty' });
    expect(await readdir(box.root)).toEqual([]);
  });

  it('deletes glob matches, and refuses the root itself', async () => {
    await put(box.root, 'logs/a.tmp');
    await put(box.root, 'logs/b.tmp');
    await put(box.root, 'logs/keep.log');
    const out = await run(box.root, { fileOperation: 'DELETE', filePath: 'logs/*.tmp' });
    expect(out).toMatchObject({ deleted: ['logs/a.tmp', 'logs/b.tmp'], count: 2 });
    expect(await readdir(path.join(box.root, 'logs'))).toEqual(['keep.log']);
    expect((await failure(box.root, { fileOperation: 'DELETE', filePath: '.', recursive: true })).code).toBe(
      'INVALID_PATH',
    );
  });

  it('deletes a symlink (inside the root) itself, not its target', async () => {
    await put(box.root, 'target.txt', 't');
    await symlink('target.txt', path.join(box.root, 'link.txt'));
    await run(box.root, { fileOperation: 'DELETE', filePath: 'link.txt' });
    expect(await readdir(box.root)).toEqual(['target.txt']);
  });
});

describe('COPY and MOVE', () => {
  it('copies a file to a path, or into an existing directory', async () => {
    await put(box.root, 'a.txt', 'A');
    await mkdir(path.join(box.root, 'out'));
    expect(await run(box.root, { fileOperation: 'COPY', filePath: 'a.txt', targetPath: 'b.txt' })).toEqual({
      operation: 'COPY',
      entries: [{ from: 'a.txt', to: 'b.txt' }],
      count: 1,
      bytes: 1,
      truncated: false,
      skipped: [],
    });
    await run(box.root, { fileOperation: 'COPY', filePath: 'a.txt', targetPath: 'out' });
    expect(await text(box.root, 'out/a.txt')).toBe('A');
    expect(await text(box.root, 'a.txt')).toBe('A');
  });

  it('respects overwrite and createDirectories', async () => {
    await put(box.root, 'a.txt', 'new');
    await put(box.root, 'b.txt', 'old');
    expect(
      (await failure(box.root, { fileOperation: 'COPY', filePath: 'a.txt', targetPath: 'b.txt' })).code,
    ).toBe('TARGET_EXISTS');
    expect(await text(box.root, 'b.txt')).toBe('old');
    await run(box.root, { fileOperation: 'COPY', filePath: 'a.txt', targetPath: 'b.txt', overwrite: true });
    expect(await text(box.root, 'b.txt')).toBe('new');
    expect(
      (await failure(box.root, { fileOperation: 'COPY', filePath: 'a.txt', targetPath: 'x/y/a.txt' })).code,
    ).toBe('PARENT_NOT_FOUND');
    await run(box.root, {
      fileOperation: 'COPY',
      filePath: 'a.txt',
      targetPath: 'x/y/a.txt',
      createDirectories: true,
    });
    expect(await text(box.root, 'x/y/a.txt')).toBe('new');
  });

  it('copies a directory only with recursive', async () => {
    await put(box.root, 'src/a.txt', 'a');
    await put(box.root, 'src/deep/b.txt', 'b');
    await mkdir(path.join(box.root, 'src/empty'));
    const err = await failure(box.root, { fileOperation: 'COPY', filePath: 'src', targetPath: 'dst' });
    expect(err.code).toBe('RECURSIVE_REQUIRED');
    const out = await run(box.root, {
      fileOperation: 'COPY',
      filePath: 'src',
      targetPath: 'dst',
      recursive: true,
    });
    expect(out).toMatchObject({ count: 2, bytes: 2 });
    expect(await text(box.root, 'dst/deep/b.txt')).toBe('b');
    expect((await lstat(path.join(box.root, 'dst/empty'))).isDirectory()).toBe(true);
  });

  it('leaves out symlinked directories of a copied tree, with a warning', async () => {
    await put(box.root, 'src/a.txt', 'a');
    await put(box.root, 'other/b.txt', 'b');
    await symlink('../other', path.join(box.root, 'src/other-link'));
    await symlink('a.txt', path.join(box.root, 'src/a-link.txt'));
    const ctx = makeCtx();
    const out = await run(
      box.root,
      { fileOperation: 'COPY', filePath: 'src', targetPath: 'dst', recursive: true },
      {},
      ctx,
    );
    expect(out).toMatchObject({ count: 2, skipped: ['src/other-link'] });
    // A symlink to a file inside the root is copied as that file.
    expect(await text(box.root, 'dst/a-link.txt')).toBe('a');
    expect(ctx.log.lines[0]).toMatchObject({
      level: 'warn',
      msg: 'COPY leaves out 1 entries that are not regular files',
    });
  });

  it('refuses to copy a directory into itself', async () => {
    await put(box.root, 'src/a.txt', 'a');
    const err = await failure(box.root, {
      fileOperation: 'COPY',
      filePath: 'src',
      targetPath: 'src/sub',
      recursive: true,
    });
    expect(err.code).toBe('INVALID_TARGET');
  });

  it('copies glob matches into a directory, keeping their layout below the glob base', async () => {
    await put(box.root, 'in/2024/a.csv', 'a');
    await put(box.root, 'in/2025/b.csv', 'b');
    await put(box.root, 'in/2025/c.txt', 'c');
    const err = await failure(box.root, {
      fileOperation: 'COPY',
      filePath: 'in/**/*.csv',
      targetPath: 'out',
    });
    expect(err.code).toBe('PARENT_NOT_FOUND');
    const out = await run(box.root, {
      fileOperation: 'COPY',
      filePath: 'in/**/*.csv',
      targetPath: 'out',
      createDirectories: true,
    });
    expect(out).toMatchObject({ count: 2 });
    expect(await snapshot(path.join(box.root, 'out'))).toEqual({
      '2024': expect.stringMatching(/^dir/),
      '2024/a.csv': expect.stringMatching(/^file 1/),
      '2025': expect.stringMatching(/^dir/),
      '2025/b.csv': expect.stringMatching(/^file 1/),
    });
  });

  it('checks every destination before copying anything', async () => {
    await put(box.root, 'in/a.csv', 'a');
    await put(box.root, 'in/b.csv', 'b');
    await put(box.root, 'out/b.csv', 'existing');
    const before = await snapshot(box.root);
    const err = await failure(box.root, { fileOperation: 'COPY', filePath: 'in/*.csv', targetPath: 'out' });
    expect(err.code).toBe('TARGET_EXISTS');
    expect(await snapshot(box.root)).toEqual(before);
  });

  it('moves a file, a directory, and glob matches', async () => {
    await put(box.root, 'a.txt', 'A');
    await run(box.root, { fileOperation: 'MOVE', filePath: 'a.txt', targetPath: 'b.txt' });
    expect(await readdir(box.root)).toEqual(['b.txt']);
    await put(box.root, 'd/x.txt', 'x');
    await run(box.root, { fileOperation: 'MOVE', filePath: 'd', targetPath: 'e' });
    expect(await text(box.root, 'e/x.txt')).toBe('x');
    await put(box.root, 'in/1.csv', '1');
    await put(box.root, 'in/2.csv', '2');
    const out = await run(box.root, { fileOperation: 'MOVE', filePath: 'in/*.csv', targetPath: 'e' });
    expect(out).toMatchObject({ count: 2 });
    expect((await readdir(path.join(box.root, 'e'))).sort()).toEqual(['1.csv', '2.csv', 'x.txt']);
    expect(await readdir(path.join(box.root, 'in'))).toEqual([]);
  });

  it('MOVE refuses to clobber without overwrite, and merges into an existing directory', async () => {
    await put(box.root, 'a.txt', 'new');
    await put(box.root, 'b.txt', 'old');
    expect(
      (await failure(box.root, { fileOperation: 'MOVE', filePath: 'a.txt', targetPath: 'b.txt' })).code,
    ).toBe('TARGET_EXISTS');
    await run(box.root, { fileOperation: 'MOVE', filePath: 'a.txt', targetPath: 'b.txt', overwrite: true });
    expect(await readdir(box.root)).toEqual(['b.txt']);
    expect(await text(box.root, 'b.txt')).toBe('new');
    await put(box.root, 'src/sub/1.txt', '1');
    await put(box.root, 'dst/src/sub/2.txt', '2');
    await run(box.root, { fileOperation: 'MOVE', filePath: 'src', targetPath: 'dst' });
    expect((await readdir(path.join(box.root, 'dst/src/sub'))).sort()).toEqual(['1.txt', '2.txt']);
    expect(await readdir(box.root)).not.toContain('src');
  });

  it('MOVE moves a symlink as a link', async () => {
    await put(box.root, 'data/t.txt', 't');
    await mkdir(path.join(box.root, 'links'));
    await symlink('../data/t.txt', path.join(box.root, 'links/l'));
    await run(box.root, { fileOperation: 'MOVE', filePath: 'links/l', targetPath: 'links/m' });
    expect(await readlink(path.join(box.root, 'links/m'))).toBe('../data/t.txt');
  });
});
