/**
 * The file-system seam of the replica's storage shell (issue 13, "Storage").
 *
 * Why a seam: the storage code must be tested against the faults real disks produce
 * (ENOSPC, EIO, EROFS, a crash between two steps of a multi-step update) and tests must
 * count fdatasyncs to check group commit. Everything storage does to the disk goes through
 * this small interface; production uses `nodeFileSystem` (node:fs/promises, so the I/O runs
 * on the libuv threadpool, off the event loop), tests wrap it with `instrumentFileSystem`.
 *
 * Errors: every method may reject with the Node error it got; storage code converts it into a
 * typed `StorageError` with `toStorageError` at its boundary, so callers never see raw errors.
 */
import * as fsp from 'node:fs/promises';
import { constants as fsConstants } from 'node:fs';

/**
 * How a file is opened. Plain fopen-style flags, named so every call site says what it means:
 * - 'r'  read only, the file must exist;
 * - 'r+' read and write, the file must exist (truncating a torn tail, appending to a segment);
 * - 'wx' create a new file, fail with EEXIST if it exists (a new log segment);
 * - 'w'  create or truncate to zero (a temporary file that is renamed into place afterwards).
 */
export type OpenFlags = 'r' | 'r+' | 'wx' | 'w';

export interface StorageFileHandle {
  /** Reads up to `length` bytes at `position` into `buffer` at `offset`; resolves to the count read (0 at end of file). */
  read(buffer: Uint8Array, offset: number, length: number, position: number): Promise<number>;
  /** Writes all of `data` at `position` (loops over short writes); rejects if it cannot. */
  write(data: Uint8Array, position: number): Promise<void>;
  /** fdatasync: the data written so far (and the size) is durable when this resolves. */
  datasync(): Promise<void>;
  /** Sets the file length (used to cut a torn tail or a failed partial write). */
  truncate(length: number): Promise<void>;
  /** Current length in bytes. */
  size(): Promise<number>;
  close(): Promise<void>;
}

export interface FileSystem {
  open(path: string, flags: OpenFlags): Promise<StorageFileHandle>;
  /** Names (not paths) of the entries of `dir`. */
  readdir(dir: string): Promise<string[]>;
  /** mkdir -p. */
  mkdir(dir: string): Promise<void>;
  /** Atomic replace of `to` by `from` (POSIX rename). Durable only after `fsyncDir`. */
  rename(from: string, to: string): Promise<void>;
  unlink(path: string): Promise<void>;
  /** fsync of a directory: makes creations, renames and unlinks in it durable. */
  fsyncDir(dir: string): Promise<void>;
}

/** The error codes storage reports; anything else is 'EUNKNOWN' with the original code in the message. */
/** EFBIG: a file size limit (RLIMIT_FSIZE) was reached, which behaves like a full disk. */
export type StorageErrorCode = 'ENOSPC' | 'EIO' | 'EROFS' | 'EACCES' | 'EPERM' | 'ENOENT' | 'EEXIST' | 'EDQUOT' | 'EFBIG' | 'EBADF' | 'EUNKNOWN';

const KNOWN_CODES: ReadonlySet<string> = new Set<StorageErrorCode>([
  'ENOSPC', 'EIO', 'EROFS', 'EACCES', 'EPERM', 'ENOENT', 'EEXIST', 'EDQUOT', 'EFBIG', 'EBADF',
]);

/** A typed failure from the file system: callers switch on `code` (e.g. retry with backoff on ENOSPC). */
export class StorageError extends Error {
  override readonly name = 'StorageError';
  readonly code: StorageErrorCode;
  readonly path: string;
  constructor(code: StorageErrorCode, message: string, path: string) {
    super(message);
    this.code = code;
    this.path = path;
  }
}

/** Converts whatever a file-system call threw into a StorageError naming the file. */
export function toStorageError(error: unknown, path: string, doing: string): StorageError {
  if (error instanceof StorageError) return error;
  const raw = typeof error === 'object' && error !== null && 'code' in error ? String((error as { code: unknown }).code) : '';
  const code: StorageErrorCode = KNOWN_CODES.has(raw) ? (raw as StorageErrorCode) : 'EUNKNOWN';
  const detail = error instanceof Error ? error.message : String(error);
  return new StorageError(code, `${doing} ${path}: ${detail}`, path);
}

/**
 * Installs `bytes` as `path` so that a crash leaves the old file or the new one, never a mix:
 * written to `tmp` in `dir`, fdatasynced, renamed over `path`, the directory fsynced. On a
 * failure before the rename the temporary file is removed (best effort: a leftover is
 * harmless to every reader, so a failing unlink must not hide the original error), and the
 * error is a StorageError naming the file it was about.
 */
export async function writeFileAtomically(fs: FileSystem, dir: string, tmp: string, path: string, bytes: Uint8Array): Promise<void> {
  let handle: StorageFileHandle;
  try {
    handle = await fs.open(tmp, 'w');
  } catch (error) {
    throw toStorageError(error, tmp, 'creating');
  }
  try {
    await handle.write(bytes, 0);
    await handle.datasync();
  } catch (error) {
    await handle.close().catch(() => undefined);
    await fs.unlink(tmp).catch(() => undefined);
    throw toStorageError(error, tmp, 'writing');
  }
  try {
    await handle.close();
    await fs.rename(tmp, path);
    await fs.fsyncDir(dir);
  } catch (error) {
    throw toStorageError(error, path, 'installing');
  }
}

/** Cuts the file at `path` to `size` bytes and makes the cut durable. */
export async function truncateDurably(fs: FileSystem, path: string, size: number): Promise<void> {
  const handle = await fs.open(path, 'r+');
  try {
    await handle.truncate(size);
    await handle.datasync();
  } finally {
    await handle.close();
  }
}

/** Production implementation on node:fs/promises. */
export const nodeFileSystem: FileSystem = {
  async open(path, flags) {
    const handle = await fsp.open(path, flags, 0o644);
    return wrapNodeHandle(handle);
  },
  async readdir(dir) {
    return fsp.readdir(dir);
  },
  async mkdir(dir) {
    await fsp.mkdir(dir, { recursive: true });
  },
  async rename(from, to) {
    await fsp.rename(from, to);
  },
  async unlink(path) {
    await fsp.unlink(path);
  },
  async fsyncDir(dir) {
    // A directory opened read-only can be fsynced on Linux and macOS; that is how a new or
    // renamed name becomes durable (the file's own fsync does not cover its directory entry).
    const handle = await fsp.open(dir, fsConstants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};

function wrapNodeHandle(handle: fsp.FileHandle): StorageFileHandle {
  return {
    async read(buffer, offset, length, position) {
      const { bytesRead } = await handle.read(buffer, offset, length, position);
      return bytesRead;
    },
    async write(data, position) {
      let done = 0;
      while (done < data.length) {
        const { bytesWritten } = await handle.write(data, done, data.length - done, position + done);
        // A zero-byte write would loop forever; the kernel reports real failures as errors.
        if (bytesWritten <= 0) throw Object.assign(new Error('write made no progress'), { code: 'EIO' });
        done += bytesWritten;
      }
    },
    async datasync() {
      await handle.datasync();
    },
    async truncate(length) {
      await handle.truncate(length);
    },
    async size() {
      return (await handle.stat()).size;
    },
    async close() {
      await handle.close();
    },
  };
}

/** Every operation the seam performs, as seen by hooks. */
export type FsOperation =
  | { readonly type: 'open'; readonly path: string; readonly flags: OpenFlags }
  | { readonly type: 'read'; readonly path: string; readonly position: number; readonly length: number }
  | { readonly type: 'write'; readonly path: string; readonly position: number; readonly length: number }
  | { readonly type: 'datasync'; readonly path: string }
  | { readonly type: 'truncate'; readonly path: string; readonly length: number }
  | { readonly type: 'size'; readonly path: string }
  | { readonly type: 'close'; readonly path: string }
  | { readonly type: 'readdir'; readonly path: string }
  | { readonly type: 'mkdir'; readonly path: string }
  | { readonly type: 'rename'; readonly path: string; readonly to: string }
  | { readonly type: 'unlink'; readonly path: string }
  | { readonly type: 'fsync_dir'; readonly path: string };

export interface FsHooks {
  /**
   * Called before each operation. Throw (e.g. an Error with code 'ENOSPC') to inject a fault;
   * for a write, return a number n to make it write only the first n bytes and then fail with
   * the returned error (a torn write), see `partialWrite`.
   */
  before?(op: FsOperation): void | Promise<void> | { readonly partialBytes: number; readonly error: Error };
  /** Called after each operation succeeded (counting datasyncs, recording order). */
  after?(op: FsOperation): void;
}

/** Makes an Error carrying a Node-style errno code, for fault injection in tests. */
export function fsError(code: string, message = code): Error {
  return Object.assign(new Error(message), { code });
}

/** Wraps a FileSystem so tests can count, order and fail operations. */
export function instrumentFileSystem(inner: FileSystem, hooks: FsHooks): FileSystem {
  const before = async (op: FsOperation): Promise<{ readonly partialBytes: number; readonly error: Error } | undefined> => {
    const r = await hooks.before?.(op);
    return r === undefined ? undefined : r;
  };
  const after = (op: FsOperation): void => hooks.after?.(op);
  const wrapHandle = (path: string, h: StorageFileHandle): StorageFileHandle => ({
    async read(buffer, offset, length, position) {
      const op: FsOperation = { type: 'read', path, position, length };
      await before(op);
      const n = await h.read(buffer, offset, length, position);
      after(op);
      return n;
    },
    async write(data, position) {
      const op: FsOperation = { type: 'write', path, position, length: data.length };
      const partial = await before(op);
      if (partial !== undefined) {
        const n = Math.max(0, Math.min(partial.partialBytes, data.length));
        if (n > 0) await h.write(data.subarray(0, n), position);
        throw partial.error;
      }
      await h.write(data, position);
      after(op);
    },
    async datasync() {
      const op: FsOperation = { type: 'datasync', path };
      await before(op);
      await h.datasync();
      after(op);
    },
    async truncate(length) {
      const op: FsOperation = { type: 'truncate', path, length };
      await before(op);
      await h.truncate(length);
      after(op);
    },
    async size() {
      const op: FsOperation = { type: 'size', path };
      await before(op);
      const n = await h.size();
      after(op);
      return n;
    },
    async close() {
      // Close always reaches the inner handle so tests never leak descriptors; hooks still see it.
      const op: FsOperation = { type: 'close', path };
      try {
        await before(op);
      } finally {
        await h.close();
      }
      after(op);
    },
  });
  return {
    async open(path, flags) {
      const op: FsOperation = { type: 'open', path, flags };
      await before(op);
      const h = await inner.open(path, flags);
      after(op);
      return wrapHandle(path, h);
    },
    async readdir(dir) {
      const op: FsOperation = { type: 'readdir', path: dir };
      await before(op);
      const names = await inner.readdir(dir);
      after(op);
      return names;
    },
    async mkdir(dir) {
      const op: FsOperation = { type: 'mkdir', path: dir };
      await before(op);
      await inner.mkdir(dir);
      after(op);
    },
    async rename(from, to) {
      const op: FsOperation = { type: 'rename', path: from, to };
      await before(op);
      await inner.rename(from, to);
      after(op);
    },
    async unlink(path) {
      const op: FsOperation = { type: 'unlink', path };
      await before(op);
      await inner.unlink(path);
      after(op);
    },
    async fsyncDir(dir) {
      const op: FsOperation = { type: 'fsync_dir', path: dir };
      await before(op);
      await inner.fsyncDir(dir);
      after(op);
    },
  };
}
