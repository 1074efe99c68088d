/**
 * Checkpoint files (actors/storage/checkpoint_file.ts) on real files through the fs seam: the
 * write is tmp + datasync + rename + directory fsync, a crash before the rename leaves the
 * previous checkpoint readable and the .tmp is cleaned, and any truncated or corrupted file is
 * skipped as invalid, never returned.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { readFile, readdir, rename, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fsError, instrumentFileSystem, nodeFileSystem } from '../../actors/storage/fs.ts';
import {
  CHECKPOINT_HEADER_BYTES,
  checkpointFileName,
  encodeCheckpointFile,
  readLatestCheckpoint,
  writeCheckpoint,
  type CheckpointRead,
} from '../../actors/storage/checkpoint_file.ts';
import { useTempDirs } from './temp_dirs.ts';

const { madeDir: freshDir } = useTempDirs('checkpoint');

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
const text = (read: CheckpointRead): string | undefined => (read.kind === 'valid' ? new TextDecoder().decode(read.payload) : undefined);

describe('checkpoint files', () => {
  it('round trip; an empty or missing directory has none', async () => {
    const dir = await freshDir();
    expect(await readLatestCheckpoint(nodeFileSystem, dir)).to.deep.equal({ kind: 'none', invalid: [], removedTemporary: [] });
    expect((await readLatestCheckpoint(nodeFileSystem, join(dir, 'absent'))).kind).to.equal('none');
    const written = await writeCheckpoint(nodeFileSystem, dir, 42, bytes('tree and client table'));
    expect(written.path).to.equal(join(dir, 'checkpoint-42.ckpt'));
    const read = await readLatestCheckpoint(nodeFileSystem, dir);
    expect(read).to.deep.include({ kind: 'valid', op: 42, path: written.path });
    expect(text(read)).to.equal('tree and client table');
    await writeCheckpoint(nodeFileSystem, dir, 7, new Uint8Array(0));
  });

  it('writes tmp, datasync, rename, directory fsync, and only then deletes the older checkpoint (newest one kept)', async () => {
    const dir = await freshDir();
    await writeCheckpoint(nodeFileSystem, dir, 10, bytes('ten'));
    const ops: string[] = [];
    const fs = instrumentFileSystem(nodeFileSystem, {
      after(op) {
        const name = (p: string): string => p.slice(dir.length + 1) || '.';
        switch (op.type) {
          case 'open':
          case 'datasync':
          case 'unlink':
          case 'fsync_dir':
            ops.push(`${op.type} ${name(op.path)}`);
            break;
          case 'rename':
            ops.push(`rename ${name(op.path)} ${name(op.to)}`);
            break;
          default:
            break;
        }
      },
    });
    const written = await writeCheckpoint(fs, dir, 20, bytes('twenty'));
    expect(ops).to.deep.equal([
      'open checkpoint-20.tmp',
      'datasync checkpoint-20.tmp',
      'rename checkpoint-20.tmp checkpoint-20.ckpt',
      'fsync_dir .',
      'unlink checkpoint-10.ckpt',
      'fsync_dir .',
    ]);
    expect(written.deleted).to.deep.equal([join(dir, 'checkpoint-10.ckpt')]);
    expect(await readdir(dir)).to.deep.equal(['checkpoint-20.ckpt']);
  });

  it('keep: 2 retains the previous checkpoint too', async () => {
    const dir = await freshDir();
    for (const op of [10, 20, 30]) await writeCheckpoint(nodeFileSystem, dir, op, bytes(`op ${op}`), { keep: 2 });
    expect((await readdir(dir)).sort()).to.deep.equal(['checkpoint-20.ckpt', 'checkpoint-30.ckpt']);
  });

  it('a crash between the tmp write and the rename: the previous checkpoint is read and the .tmp cleaned', async () => {
    const dir = await freshDir();
    await writeCheckpoint(nodeFileSystem, dir, 10, bytes('ten'));
    const fs = instrumentFileSystem(nodeFileSystem, {
      before(op) {
        if (op.type === 'rename') throw fsError('EIO', 'power lost');
      },
    });
    const error = await writeCheckpoint(fs, dir, 20, bytes('twenty')).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.have.property('name', 'StorageError');
    expect(error).to.have.property('code', 'EIO');
    expect((await readdir(dir)).sort()).to.deep.equal(['checkpoint-10.ckpt', 'checkpoint-20.tmp']);
    const read = await readLatestCheckpoint(nodeFileSystem, dir);
    expect(read).to.deep.include({ kind: 'valid', op: 10, removedTemporary: [join(dir, 'checkpoint-20.tmp')] });
    expect(text(read)).to.equal('ten');
    expect(await readdir(dir)).to.deep.equal(['checkpoint-10.ckpt']);
  });

  it('a write torn midway (ENOSPC) fails typed, removes its tmp, and leaves the previous checkpoint', async () => {
    const dir = await freshDir();
    await writeCheckpoint(nodeFileSystem, dir, 10, bytes('ten'));
    const fs = instrumentFileSystem(nodeFileSystem, {
      before(op) {
        if (op.type === 'write') return { partialBytes: 5, error: fsError('ENOSPC') };
        return undefined;
      },
    });
    const error = await writeCheckpoint(fs, dir, 20, new Uint8Array(1000)).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.have.property('code', 'ENOSPC');
    expect(await readdir(dir)).to.deep.equal(['checkpoint-10.ckpt']);
    expect(text(await readLatestCheckpoint(nodeFileSystem, dir))).to.equal('ten');
  });

  it('a truncated newest checkpoint is skipped as invalid and reported; the older one is used', async () => {
    const dir = await freshDir();
    await writeCheckpoint(nodeFileSystem, dir, 10, bytes('ten'), { keep: 2 });
    await writeCheckpoint(nodeFileSystem, dir, 20, bytes('twenty bytes of data'), { keep: 2 });
    const newest = join(dir, checkpointFileName(20));
    await truncate(newest, CHECKPOINT_HEADER_BYTES + 3);
    const read = await readLatestCheckpoint(nodeFileSystem, dir);
    expect(read).to.deep.include({ kind: 'valid', op: 10 });
    expect(read.kind === 'valid' && read.invalid).to.have.length(1);
    expect(read.kind === 'valid' && read.invalid[0]?.path).to.equal(newest);
    expect(read.kind === 'valid' && read.invalid[0]?.reason).to.match(/truncated or extended/);
    await truncate(newest, 5);
    expect(await readLatestCheckpoint(nodeFileSystem, dir)).to.deep.include({ kind: 'valid', op: 10 });
  });

  it('a file renamed to another op, a length beyond the bound, a corrupted payload: all invalid', async () => {
    const dir = await freshDir();
    await writeCheckpoint(nodeFileSystem, dir, 10, bytes('payload'));
    await rename(join(dir, checkpointFileName(10)), join(dir, checkpointFileName(11)));
    const renamed = await readLatestCheckpoint(nodeFileSystem, dir);
    expect(renamed.kind).to.equal('none');
    expect(renamed.kind === 'none' && renamed.invalid[0]?.reason).to.match(/does not match the file name/);

    const big = await freshDir();
    await writeCheckpoint(nodeFileSystem, big, 1, new Uint8Array(1000));
    const bounded = await readLatestCheckpoint(nodeFileSystem, big, { maxBytes: 999 });
    expect(bounded.kind === 'none' && bounded.invalid[0]?.reason).to.match(/exceeds the 999-byte bound/);

    const corrupt = await freshDir();
    await writeCheckpoint(nodeFileSystem, corrupt, 3, bytes('abcdef'));
    const path = join(corrupt, checkpointFileName(3));
    const content = new Uint8Array(await readFile(path));
    content[CHECKPOINT_HEADER_BYTES + 2] = 0x7a;
    await writeFile(path, content);
    const read = await readLatestCheckpoint(nodeFileSystem, corrupt);
    expect(read.kind === 'none' && read.invalid[0]).to.deep.equal({ path, reason: 'checksum mismatch' });
  });

  it('a newer on-disk format is refused, naming the file', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, checkpointFileName(5)), encodeCheckpointFile(5, bytes('future'), 2));
    expect(await readLatestCheckpoint(nodeFileSystem, dir)).to.deep.equal({ kind: 'newer_format', path: join(dir, checkpointFileName(5)), version: 2 });
  });

  it('ignores names that are not checkpoints (and bogus op numbers)', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, 'checkpoint-99999999999999999999.ckpt'), 'x');
    await writeFile(join(dir, 'checkpoint-007.ckpt'), 'x');
    await writeFile(join(dir, 'segment-1.log'), 'x');
    await writeCheckpoint(nodeFileSystem, dir, 4, bytes('four'));
    expect(await readLatestCheckpoint(nodeFileSystem, dir)).to.deep.include({ kind: 'valid', op: 4, invalid: [] });
  });

  it('any single flipped byte or truncation is detected, never returned as a checkpoint', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ minLength: 0, maxLength: 300 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        fc.boolean(),
        async (payload, where, mask, cut) => {
          const dir = await freshDir();
          await writeCheckpoint(nodeFileSystem, dir, 9, payload);
          const path = join(dir, checkpointFileName(9));
          const content = new Uint8Array(await readFile(path));
          const at = where % content.length;
          if (cut) await writeFile(path, content.subarray(0, at));
          else {
            content[at] = (content[at] ?? 0) ^ mask;
            await writeFile(path, content);
          }
          const read = await readLatestCheckpoint(nodeFileSystem, dir);
          // A flip in the version field may read as a newer format: refused, which is safe.
          expect(read.kind).to.be.oneOf(['none', 'newer_format']);
        },
      ),
      { numRuns: 200 },
    );
  });
});
