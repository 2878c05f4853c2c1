import { randomBytes } from 'node:crypto';
import { access, mkdir, readdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';
import { PermanentJobError } from '@chronos/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import yauzl from 'yauzl';
import yazl from 'yazl';
import { failure, put, refused, run, sandbox, snapshot, text, type Sandbox } from './file-system-helpers.ts';

let box: Sandbox;
beforeEach(async () => {
  box = await sandbox();
});
afterEach(async () => {
  await box.cleanup();
});

interface ZipSpec {
  name: string;
  content?: string | Buffer;
  mode?: number;
}

/** A zip built by yazl in memory. */
async function zipBuffer(entries: ZipSpec[]): Promise<Buffer> {
  const zip = new yazl.ZipFile();
  for (const e of entries) {
    if (e.name.endsWith('/')) zip.addEmptyDirectory(e.name);
    else
      zip.addBuffer(
        Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content ?? ''),
        e.name,
        e.mode ? { mode: e.mode } : {},
      );
  }
  zip.end();
  const chunks: Buffer[] = [];
  for await (const chunk of zip.outputStream as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/**
 * A zip holding an entry name yazl refuses to write (`../evil`, `/abs`): written under a placeholder
 * of the same length, then renamed in the local header and the central directory.
 */
async function maliciousZip(name: string, content = 'evil'): Promise<Buffer> {
  const placeholder = 'Q'.repeat(name.length);
  const buf = await zipBuffer([
    { name: 'ok.txt', content: 'fine' },
    { name: placeholder, content },
  ]);
  const from = Buffer.from(placeholder);
  const to = Buffer.from(name);
  let at = buf.indexOf(from);
  let replaced = 0;
  while (at >= 0) {
    to.copy(buf, at);
    replaced++;
    at = buf.indexOf(from, at + 1);
  }
  expect(replaced).toBe(2);
  return buf;
}

async function zipNames(file: string): Promise<string[]> {
  const zip = await yauzl.openPromise(file, { lazyEntries: true });
  const names: string[] = [];
  for await (const entry of zip.eachEntry()) names.push(entry.fileName);
  zip.close();
  return names.sort();
}

const exists = (file: string) =>
  access(file).then(
    () => true,
    () => false,
  );

describe('COMPRESS and DECOMPRESS: zip', () => {
  beforeEach(async () => {
    await put(box.root, 'data/a.txt', 'alpha');
    await put(box.root, 'data/sub/b.csv', 'x,y\n1,2\n');
    await mkdir(path.join(box.root, 'data/empty'));
  });

  it('zips a directory with recursive, and unzips it elsewhere identically', async () => {
    const err = await failure(box.root, {
      fileOperation: 'COMPRESS',
      filePath: 'data',
      targetPath: 'data.zip',
    });
    expect(err.code).toBe('RECURSIVE_REQUIRED');
    const out = await run(box.root, {
      fileOperation: 'COMPRESS',
      filePath: 'data',
      targetPath: 'data.zip',
      recursive: true,
    });
    expect(out).toMatchObject({
      operation: 'COMPRESS',
      format: 'zip',
      outputPath: 'data.zip',
      files: 3,
      bytesIn: 13,
    });
    expect(await zipNames(path.join(box.root, 'data.zip'))).toEqual([
      'data/a.txt',
      'data/empty/',
      'data/sub/b.csv',
    ]);

    const unzipped = await run(box.root, {
      fileOperation: 'DECOMPRESS',
      filePath: 'data.zip',
      targetPath: 'restored',
      createDirectories: true,
    });
    expect(unzipped).toMatchObject({ operation: 'DECOMPRESS', format: 'zip', files: 2, bytes: 13 });
    const original = await snapshot(path.join(box.root, 'data'));
    const restored = await snapshot(path.join(box.root, 'restored/data'));
    const strip = (s: Record<string, string>) =>
      Object.fromEntries(Object.entries(s).map(([k, v]) => [k, v.split(' ').slice(0, 3).join(' ')]));
    expect(strip(restored)).toEqual(strip(original));
    // The staging directory is gone.
    expect(await readdir(path.join(box.root, 'restored'))).toEqual(['data']);
  });

  it('zips glob matches, keeping their layout below the glob base', async () => {
    await run(box.root, {
      fileOperation: 'COMPRESS',
      filePath: 'data/**/*.{txt,csv}',
      targetPath: 'out/m.zip',
      createDirectories: true,
    });
    expect(await zipNames(path.join(box.root, 'out/m.zip'))).toEqual(['a.txt', 'sub/b.csv']);
  });

  it('respects overwrite for the archive and for extracted files', async () => {
    await put(box.root, 'data.zip', 'old');
    const err = await refused(box, {
      fileOperation: 'COMPRESS',
      filePath: 'data',
      targetPath: 'data.zip',
      recursive: true,
    });
    expect(err.code).toBe('TARGET_EXISTS');
    await run(box.root, {
      fileOperation: 'COMPRESS',
      filePath: 'data',
      targetPath: 'data.zip',
      recursive: true,
      overwrite: true,
    });
    await writeFile(path.join(box.root, 'data/a.txt'), 'changed');
    // Extracting over data/ would replace data/a.txt: refused, nothing touched.
    const clash = await refused(box, { fileOperation: 'DECOMPRESS', filePath: 'data.zip', targetPath: '.' });
    expect(clash.code).toBe('TARGET_EXISTS');
    await run(box.root, {
      fileOperation: 'DECOMPRESS',
      filePath: 'data.zip',
      targetPath: '.',
      overwrite: true,
    });
    expect(await text(box.root, 'data/a.txt')).toBe('alpha');
  });

  it('needs createDirectories for a missing target directory', async () => {
    await writeFile(path.join(box.root, 'x.zip'), await zipBuffer([{ name: 'f.txt', content: 'f' }]));
    const err = await refused(box, { fileOperation: 'DECOMPRESS', filePath: 'x.zip', targetPath: 'new/dir' });
    expect(err.code).toBe('PARENT_NOT_FOUND');
  });
});

describe('COMPRESS and DECOMPRESS: gzip', () => {
  it('gzips one file (format from the .gz extension) and gunzips it (format from the magic bytes)', async () => {
    const body = 'line\n'.repeat(1000);
    await put(box.root, 'log.txt', body);
    const out = await run(box.root, {
      fileOperation: 'COMPRESS',
      filePath: 'log.txt',
      targetPath: 'log.txt.gz',
    });
    expect(out).toMatchObject({ format: 'gzip', files: 1, bytesIn: 5000 });
    expect((out as { bytesOut: number }).bytesOut).toBeLessThan(200);
    await mkdir(path.join(box.root, 'back'));
    const back = await run(box.root, {
      fileOperation: 'DECOMPRESS',
      filePath: 'log.txt.gz',
      targetPath: 'back',
    });
    expect(back).toMatchObject({ format: 'gzip', outputPath: 'back/log.txt', bytes: 5000 });
    expect(await text(box.root, 'back/log.txt')).toBe(body);
  });

  it('refuses gzip for several files, and a file that is no archive', async () => {
    await put(box.root, 'a.txt', 'a');
    await put(box.root, 'b.txt', 'b');
    const err = await refused(box, {
      fileOperation: 'COMPRESS',
      filePath: '*.txt',
      targetPath: 'all.gz',
      compressionFormat: 'gzip',
    });
    expect(err.code).toBe('INVALID_PAYLOAD');
    expect(err.message).toContain('gzip compresses exactly one file');
    const notArchive = await refused(box, {
      fileOperation: 'DECOMPRESS',
      filePath: 'a.txt',
      targetPath: 'x',
    });
    expect(notArchive.code).toBe('ARCHIVE_INVALID');
  });
});

describe('DECOMPRESS refusals (nothing written, inside or outside the root)', () => {
  it('refuses a zip entry climbing out with ../ (zip-slip)', async () => {
    await mkdir(path.join(box.root, 'target'));
    await writeFile(path.join(box.root, 'slip.zip'), await maliciousZip('../evil'));
    const err = await refused(box, {
      fileOperation: 'DECOMPRESS',
      filePath: 'slip.zip',
      targetPath: 'target',
    });
    expect(err).toBeInstanceOf(PermanentJobError);
    expect(err.code).toBe('PATH_OUTSIDE_ROOT');
    expect(err.message).toContain('"../evil"');
    expect(await exists(path.join(box.root, 'evil'))).toBe(false);
  });

  it('refuses a zip entry deep enough to leave the root, and one with backslashes', async () => {
    await writeFile(path.join(box.root, 'deep.zip'), await maliciousZip('a/../../../outside/evil'));
    const deep = await refused(box, { fileOperation: 'DECOMPRESS', filePath: 'deep.zip', targetPath: '.' });
    expect(deep.code).toBe('PATH_OUTSIDE_ROOT');
    await writeFile(path.join(box.root, 'back.zip'), await maliciousZip('..\\..\\evil'));
    const back = await refused(box, { fileOperation: 'DECOMPRESS', filePath: 'back.zip', targetPath: '.' });
    expect(back.code).toBe('PATH_OUTSIDE_ROOT');
  });

  it('refuses a zip entry with an absolute path', async () => {
    const abs = path.join(tmpdir(), `chronos-zip-abs-${randomBytes(4).toString('hex')}.txt`);
    await writeFile(path.join(box.root, 'abs.zip'), await maliciousZip(abs));
    const err = await refused(box, { fileOperation: 'DECOMPRESS', filePath: 'abs.zip', targetPath: '.' });
    expect(err.code).toBe('PATH_OUTSIDE_ROOT');
    expect(err.message).toContain(JSON.stringify(abs));
    expect(await exists(abs)).toBe(false);
  });

  it('refuses a zip holding a symlink entry', async () => {
    await writeFile(
      path.join(box.root, 'link.zip'),
      await zipBuffer([{ name: 'passwd', content: '/etc/passwd', mode: 0o120777 }]),
    );
    const err = await refused(box, { fileOperation: 'DECOMPRESS', filePath: 'link.zip', targetPath: '.' });
    expect(err.code).toBe('ARCHIVE_UNSAFE_ENTRY');
    expect(err.message).toContain('"passwd" is a symlink');
  });

  it('refuses an entry that would land on a symlink leading outside', async () => {
    await mkdir(path.join(box.root, 'target'));
    await symlink(box.outside, path.join(box.root, 'target/out'));
    await writeFile(
      path.join(box.root, 'x.zip'),
      await zipBuffer([{ name: 'out/planted.txt', content: 'x' }]),
    );
    const err = await refused(box, { fileOperation: 'DECOMPRESS', filePath: 'x.zip', targetPath: 'target' });
    expect(err.code).toBe('PATH_OUTSIDE_ROOT');
    expect(err.message).toContain('"target/out/planted.txt"');
  });

  it('refuses a zip bomb past extractMaxBytes before writing anything', async () => {
    const zeros = Buffer.alloc(20 * 1024 * 1024);
    const bomb = await zipBuffer([{ name: 'zeros.bin', content: zeros }]);
    expect(bomb.length).toBeLessThan(100 * 1024);
    await writeFile(path.join(box.root, 'bomb.zip'), bomb);
    const err = await refused(
      box,
      { fileOperation: 'DECOMPRESS', filePath: 'bomb.zip', targetPath: 'out', createDirectories: true },
      { extractMaxBytes: 5 * 1024 * 1024 },
    );
    expect(err.code).toBe('ARCHIVE_TOO_LARGE');
  });

  it('refuses a zip with too many entries', async () => {
    const many = Array.from({ length: 30 }, (_, i) => ({ name: `f${i}.txt`, content: 'x' }));
    await writeFile(path.join(box.root, 'many.zip'), await zipBuffer(many));
    const err = await refused(
      box,
      { fileOperation: 'DECOMPRESS', filePath: 'many.zip', targetPath: 'out', createDirectories: true },
      { extractMaxEntries: 10 },
    );
    expect(err.code).toBe('ARCHIVE_TOO_LARGE');
  });

  it('stops a gzip bomb while streaming and leaves no partial file', async () => {
    await writeFile(path.join(box.root, 'bomb.gz'), gzipSync(Buffer.alloc(20 * 1024 * 1024)));
    const err = await refused(
      box,
      { fileOperation: 'DECOMPRESS', filePath: 'bomb.gz', targetPath: 'bomb.bin' },
      { extractMaxBytes: 5 * 1024 * 1024 },
    );
    expect(err.code).toBe('ARCHIVE_TOO_LARGE');
  });

  it('refuses a corrupt zip', async () => {
    const good = await zipBuffer([{ name: 'a.txt', content: 'a'.repeat(1000) }]);
    await writeFile(path.join(box.root, 'bad.zip'), good.subarray(0, good.length - 30));
    const err = await refused(box, { fileOperation: 'DECOMPRESS', filePath: 'bad.zip', targetPath: '.' });
    expect(err.code).toBe('ARCHIVE_INVALID');
  });

  it('extracts nothing when a later entry is refused', async () => {
    // A good entry first, then a bad one: the good one must not be written either.
    const buf = await maliciousZip('../x');
    await writeFile(path.join(box.root, 'mixed.zip'), buf);
    await refused(box, { fileOperation: 'DECOMPRESS', filePath: 'mixed.zip', targetPath: '.' });
    expect(await exists(path.join(box.root, 'ok.txt'))).toBe(false);
    expect(await readFile(path.join(box.root, 'mixed.zip'))).toEqual(buf);
  });
});
