import type { FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import yauzl from 'yauzl';

const CHUNK = 64 * 1024;

/**
 * Lets yauzl read a zip through a handle we opened (O_NOFOLLOW, checked) without taking ownership
 * of its descriptor: yauzl's own fd reader closes the descriptor on `close()`, under the handle.
 */
class HandleReader extends yauzl.RandomAccessReader {
  constructor(private readonly fh: FileHandle) {
    super();
  }

  // Reads through the handle: an fs.ReadStream on its fd would close the fd when destroyed.
  override _readStreamForRange(start: number, end: number): Readable {
    const fh = this.fh;
    let position = start;
    return new Readable({
      read(size) {
        const length = Math.min(size > 0 ? size : CHUNK, end - position);
        if (length <= 0) {
          this.push(null);
          return;
        }
        fh.read(Buffer.allocUnsafe(length), 0, length, position).then(
          ({ bytesRead, buffer }) => {
            if (bytesRead === 0) {
              this.push(null); // truncated file: yauzl reports the short read
              return;
            }
            position += bytesRead;
            this.push(buffer.subarray(0, bytesRead));
          },
          (err: unknown) => this.destroy(err as Error),
        );
      },
    });
  }
}

/** Opens the zip behind `fh` (lazy entries, names undecoded unless `decodeStrings`); the handle stays ours. */
export async function openZip(fh: FileHandle, options: { decodeStrings: boolean }): Promise<yauzl.ZipFile> {
  const { size } = await fh.stat();
  return yauzl.fromRandomAccessReaderPromise(new HandleReader(fh), size, {
    lazyEntries: true,
    autoClose: false,
    decodeStrings: options.decodeStrings,
    validateEntrySizes: true,
  });
}
