import { access, mkdir, readlink, symlink } from 'node:fs/promises';
import path from 'node:path';
import { PermanentJobError, type FileSystemPayloadInput } from '@chronos/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { put, refused, run, sandbox, snapshot, text, type Sandbox } from './file-system-helpers.ts';

let box: Sandbox;
beforeEach(async () => {
  box = await sandbox();
  await put(box.root, 'in/a.txt', 'a');
  await put(box.root, 'in/b.txt', 'b');
});
afterEach(async () => {
  await box.cleanup();
});

async function expectOutside(payload: FileSystemPayloadInput, offending: string): Promise<void> {
  const err = await refused(box, payload);
  expect(err).toBeInstanceOf(PermanentJobError);
  expect(err.code).toBe('PATH_OUTSIDE_ROOT');
  expect(err.message).toContain(JSON.stringify(offending));
}

const gone = (file: string) =>
  access(file).then(
    () => false,
    () => true,
  );

describe('FILE_SYSTEM path safety: lexical escapes', () => {
  const escapes = ['../x', '/etc/passwd', 'a/../../x', 'in/../../outside/secret.txt', '..'];

  it.each(escapes)('refuses %s as a source, touching nothing', async (bad) => {
    for (const fileOperation of ['READ', 'DELETE', 'LIST'] as const) {
      await expectOutside({ fileOperation, filePath: bad, recursive: true }, bad);
    }
    await expectOutside({ fileOperation: 'WRITE', filePath: bad, fileContent: 'x', overwrite: true }, bad);
    await expectOutside(
      { fileOperation: 'APPEND', filePath: bad, fileContent: 'x', createDirectories: true },
      bad,
    );
    await expectOutside({ fileOperation: 'MKDIR', filePath: bad, createDirectories: true }, bad);
  });

  it.each(escapes)('refuses %s as a target, touching nothing', async (bad) => {
    for (const fileOperation of ['COPY', 'MOVE', 'COMPRESS', 'DECOMPRESS'] as const) {
      await expectOutside(
        { fileOperation, filePath: 'in/a.txt', targetPath: bad, overwrite: true, createDirectories: true },
        bad,
      );
    }
  });

  it('refuses .. in a glob and in filePattern', async () => {
    await expectOutside({ fileOperation: 'DELETE', filePath: '../*' }, '../*');
    await expectOutside({ fileOperation: 'LIST', filePath: 'in', filePattern: '../../*' }, '../../*');
  });
});

describe('FILE_SYSTEM path safety: symlinks', () => {
  it('refuses a symlink inside the root pointing to /etc, for every operation', async () => {
    await symlink('/etc/passwd', path.join(box.root, 'passwd'));
    await symlink('/etc', path.join(box.root, 'etc'));
    await expectOutside({ fileOperation: 'READ', filePath: 'passwd' }, 'passwd');
    await expectOutside({ fileOperation: 'READ', filePath: 'etc/hostname' }, 'etc/hostname');
    await expectOutside({ fileOperation: 'LIST', filePath: 'etc' }, 'etc');
    await expectOutside({ fileOperation: 'DELETE', filePath: 'passwd' }, 'passwd');
    await expectOutside({ fileOperation: 'COPY', filePath: 'passwd', targetPath: 'copy' }, 'passwd');
    await expectOutside({ fileOperation: 'COMPRESS', filePath: 'passwd', targetPath: 'p.zip' }, 'passwd');
  });

  it('refuses to write, append or move through a symlink leading outside, even a dangling one', async () => {
    await symlink(path.join(box.outside, 'secret.txt'), path.join(box.root, 'secret'));
    await symlink('../outside/new.txt', path.join(box.root, 'dangling'));
    await expectOutside(
      { fileOperation: 'WRITE', filePath: 'secret', fileContent: 'pwned', overwrite: true },
      'secret',
    );
    await expectOutside({ fileOperation: 'APPEND', filePath: 'secret', fileContent: 'pwned' }, 'secret');
    await expectOutside({ fileOperation: 'WRITE', filePath: 'dangling', fileContent: 'pwned' }, 'dangling');
    await expectOutside({ fileOperation: 'APPEND', filePath: 'dangling', fileContent: 'pwned' }, 'dangling');
    await expectOutside(
      { fileOperation: 'COPY', filePath: 'in/a.txt', targetPath: 'secret', overwrite: true },
      'secret',
    );
    await expectOutside({ fileOperation: 'MOVE', filePath: 'in/a.txt', targetPath: 'dangling' }, 'dangling');
    await expectOutside({ fileOperation: 'MOVE', filePath: 'secret', targetPath: 'moved' }, 'secret');
    expect(await text(box.outside, 'secret.txt')).toBe('top secret');
    expect(await gone(path.join(box.outside, 'new.txt'))).toBe(true);
  });

  it('refuses a chain of symlinks that ends outside', async () => {
    await symlink(box.outside, path.join(box.root, 'hop2'));
    await symlink('hop2', path.join(box.root, 'hop1'));
    await expectOutside({ fileOperation: 'READ', filePath: 'hop1/secret.txt' }, 'hop1/secret.txt');
    await expectOutside({ fileOperation: 'DELETE', filePath: 'hop1' }, 'hop1');
  });

  it('refuses a symlinked directory leading outside, in any component of the path', async () => {
    await symlink(box.outside, path.join(box.root, 'data'));
    await mkdir(path.join(box.root, 'deep'));
    await symlink('../../outside', path.join(box.root, 'deep/up'));
    for (const p of ['data/secret.txt', 'deep/up/secret.txt']) {
      await expectOutside({ fileOperation: 'READ', filePath: p }, p);
      await expectOutside({ fileOperation: 'DELETE', filePath: p }, p);
    }
    await expectOutside(
      { fileOperation: 'WRITE', filePath: 'data/new/x.txt', fileContent: 'x', createDirectories: true },
      'data/new/x.txt',
    );
    await expectOutside(
      { fileOperation: 'MKDIR', filePath: 'deep/up/d', createDirectories: true },
      'deep/up/d',
    );
    await expectOutside({ fileOperation: 'COPY', filePath: 'in/a.txt', targetPath: 'data/' }, 'data/');
    await expectOutside({ fileOperation: 'LIST', filePath: 'data', recursive: true }, 'data');
    await expectOutside({ fileOperation: 'LIST', filePath: 'data', filePattern: '*' }, 'data');
    await expectOutside(
      {
        fileOperation: 'PROCESS',
        filePath: 'data/secret.txt',
        targetPath: 'out.csv',
        fileProcessing: { input: { format: 'csv' }, output: { format: 'csv' } },
      },
      'data/secret.txt',
    );
    expect(await gone(path.join(box.outside, 'new'))).toBe(true);
    expect(await gone(path.join(box.outside, 'd'))).toBe(true);
  });

  it('refuses a glob that would read or match through a symlink leading outside', async () => {
    await symlink(box.outside, path.join(box.root, 'data'));
    const err = await refused(box, { fileOperation: 'DELETE', filePath: 'data/*' });
    expect(err.code).toBe('PATH_OUTSIDE_ROOT');
    expect(err.message).toContain('"data"');
    await expectOutside({ fileOperation: 'READ', filePath: 'data/*.txt' }, 'data/*.txt');
    await expectOutside(
      { fileOperation: 'COPY', filePath: 'data/*', targetPath: 'in', overwrite: true },
      'data/*',
    );
    // `**` never descends into a symlinked directory (followSymbolicLinks is off): nothing matches.
    const deep = await refused(box, {
      fileOperation: 'COPY',
      filePath: 'data/**',
      targetPath: 'in',
      overwrite: true,
    });
    expect(deep.code).toBe('FILE_NOT_FOUND');
    // Globs never return symlinks (followSymbolicLinks off): `*` neither matches nor enters `data`.
    const outside = await snapshot(box.outside);
    const out = await run(box.root, { fileOperation: 'DELETE', filePath: '*', recursive: true });
    expect(out).toMatchObject({ deleted: ['in'] });
    expect(await readlink(path.join(box.root, 'data'))).toBe(box.outside);
    expect(await snapshot(box.outside)).toEqual(outside);
  });

  it('refuses a directory walk (COPY/COMPRESS/LIST with recursive) that meets a symlink leading outside', async () => {
    await symlink(path.join(box.outside, 'secret.txt'), path.join(box.root, 'in/leak.txt'));
    await expectOutside(
      { fileOperation: 'COPY', filePath: 'in', targetPath: 'copy', recursive: true },
      'in/leak.txt',
    );
    await expectOutside(
      { fileOperation: 'COMPRESS', filePath: 'in', targetPath: 'in.zip', recursive: true },
      'in/leak.txt',
    );
    await expectOutside({ fileOperation: 'LIST', filePath: 'in' }, 'in/leak.txt');
  });

  it('allows symlinks that stay inside the root', async () => {
    await mkdir(path.join(box.root, 'links'));
    await symlink('../in', path.join(box.root, 'links/in'));
    await symlink(path.join(box.root, 'in/a.txt'), path.join(box.root, 'links/abs-a'));
    expect(await run(box.root, { fileOperation: 'READ', filePath: 'links/in/b.txt' })).toMatchObject({
      content: 'b',
    });
    expect(await run(box.root, { fileOperation: 'READ', filePath: 'links/abs-a' })).toMatchObject({
      content: 'a',
    });
    await run(box.root, { fileOperation: 'WRITE', filePath: 'links/in/c.txt', fileContent: 'c' });
    expect(await text(box.root, 'in/c.txt')).toBe('c');
    const listed = await run(box.root, { fileOperation: 'LIST', filePath: 'links/in/*.txt' });
    expect(listed).toMatchObject({ count: 3 });
  });

  it('refuses a symlink loop clearly', async () => {
    await symlink('loop2', path.join(box.root, 'loop1'));
    await symlink('loop1', path.join(box.root, 'loop2'));
    const err = await refused(box, { fileOperation: 'READ', filePath: 'loop1' });
    expect(err.code).toBe('SYMLINK_LOOP');
  });
});
