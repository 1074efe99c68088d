/**
 * The superblock (actors/storage/superblock.ts) and the replica directory's identity
 * (actors/storage/identity.ts), on real files through the fs seam so faults can be injected:
 * a write torn at any byte never loses the last durable state and never yields garbage, damaged
 * copies are ignored, a newer format is refused naming the file, and a directory belonging to
 * someone else is refused naming its identity file.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fsError, instrumentFileSystem, nodeFileSystem, type FileSystem, type FsHooks } from '../../actors/storage/fs.ts';
import {
  SUPERBLOCK_COPY_BYTES,
  SUPERBLOCK_FILE,
  SUPERBLOCK_PAYLOAD_MAX,
  Superblock,
  encodeSuperblockCopy,
  readSuperblock,
  type SuperblockRead,
} from '../../actors/storage/superblock.ts';
import { IDENTITY_FILE, claimDirectory, encodeIdentity, type DirectoryIdentity } from '../../actors/storage/identity.ts';
import { useTempDirs } from './temp_dirs.ts';

const { madeDir: freshDir } = useTempDirs('superblock');

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

async function openOrFail(fs: FileSystem, dir: string): Promise<Superblock> {
  const opened = await Superblock.open(fs, dir);
  if (opened.kind !== 'opened') throw new Error(`expected opened, got ${opened.kind}`);
  return opened.superblock;
}

function payloadOf(read: SuperblockRead): Uint8Array | undefined {
  return read.kind === 'valid' ? read.payload : undefined;
}

async function patchFile(path: string, position: number, data: Uint8Array): Promise<void> {
  const content = new Uint8Array(await readFile(path).catch(() => Buffer.alloc(0)));
  const size = Math.max(content.length, position + data.length);
  const out = new Uint8Array(size);
  out.set(content, 0);
  out.set(data, position);
  await writeFile(path, out);
}

describe('superblock: alternating checksummed copies', () => {
  it('a fresh directory has none; writes read back newest first, across reopen', async () => {
    const dir = await freshDir();
    expect((await readSuperblock(nodeFileSystem, dir)).kind).to.equal('none');
    const opened = await Superblock.open(nodeFileSystem, dir);
    expect(opened.kind).to.equal('opened');
    if (opened.kind !== 'opened') return;
    expect(opened.found.kind).to.equal('none');
    await opened.superblock.write(bytes('view 1'));
    await opened.superblock.write(bytes('view 2'));
    expect(opened.superblock.durableSequence).to.equal(2);
    await opened.superblock.close();
    const read = await readSuperblock(nodeFileSystem, dir);
    expect(read.kind).to.equal('valid');
    if (read.kind !== 'valid') return;
    expect(read.sequence).to.equal(2);
    expect(new TextDecoder().decode(read.payload)).to.equal('view 2');
    expect(read.copies.map((c) => c.status)).to.deep.equal(['valid', 'valid']);
    const again = await openOrFail(nodeFileSystem, dir);
    await again.write(bytes('view 3'));
    await again.close();
    const third = await readSuperblock(nodeFileSystem, dir);
    expect(third.kind === 'valid' && third.sequence).to.equal(3);
  });

  it('alternates slots: each write lands in the copy not holding the newest state, then one datasync', async () => {
    const dir = await freshDir();
    const ops: string[] = [];
    const fs = instrumentFileSystem(nodeFileSystem, {
      after(op) {
        if (op.type === 'write') ops.push(`write@${op.position}/${op.length}`);
        if (op.type === 'datasync') ops.push('datasync');
      },
    });
    const sb = await openOrFail(fs, dir);
    for (let i = 0; i < 4; i++) await sb.write(bytes(`p${i}`));
    await sb.close();
    const c = SUPERBLOCK_COPY_BYTES;
    expect(ops).to.deep.equal([`write@${c}/${c}`, 'datasync', `write@0/${c}`, 'datasync', `write@${c}/${c}`, 'datasync', `write@0/${c}`, 'datasync']);
  });

  it('serializes concurrent writes: sequences never race', async () => {
    const dir = await freshDir();
    const sb = await openOrFail(nodeFileSystem, dir);
    await Promise.all([1, 2, 3, 4, 5].map((i) => sb.write(bytes(`w${i}`))));
    await sb.close();
    const read = await readSuperblock(nodeFileSystem, dir);
    expect(read.kind === 'valid' && read.sequence).to.equal(5);
    expect(new TextDecoder().decode(payloadOf(read))).to.equal('w5');
  });

  it('bounds the payload to one copy', async () => {
    const dir = await freshDir();
    const sb = await openOrFail(nodeFileSystem, dir);
    await sb.write(new Uint8Array(SUPERBLOCK_PAYLOAD_MAX).fill(7));
    expect(() => sb.write(new Uint8Array(SUPERBLOCK_PAYLOAD_MAX + 1))).to.throw(/exceeds/);
    await sb.close();
    expect(payloadOf(await readSuperblock(nodeFileSystem, dir))?.length).to.equal(SUPERBLOCK_PAYLOAD_MAX);
  });

  it('a write torn at any byte (or whose datasync fails) leaves the last durable state readable, never garbage', async () => {
    type Step =
      | { readonly kind: 'write'; readonly payload: Uint8Array }
      | { readonly kind: 'tear'; readonly payload: Uint8Array; readonly at: number }
      | { readonly kind: 'sync_fails'; readonly payload: Uint8Array }
      | { readonly kind: 'reopen' };
    const payload = fc.uint8Array({ minLength: 0, maxLength: 200 });
    const step: fc.Arbitrary<Step> = fc.oneof(
      { weight: 4, arbitrary: payload.map((p): Step => ({ kind: 'write', payload: p })) },
      { weight: 2, arbitrary: fc.tuple(payload, fc.integer({ min: 0, max: SUPERBLOCK_COPY_BYTES })).map(([p, at]): Step => ({ kind: 'tear', payload: p, at })) },
      { weight: 1, arbitrary: payload.map((p): Step => ({ kind: 'sync_fails', payload: p })) },
      { weight: 2, arbitrary: fc.constant<Step>({ kind: 'reopen' }) },
    );
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 25 }), async (steps) => {
        const dir = await freshDir();
        let fault: { readonly kind: 'tear'; readonly at: number } | { readonly kind: 'sync' } | undefined;
        const hooks: FsHooks = {
          before(op) {
            if (fault === undefined) return undefined;
            if (fault.kind === 'tear' && op.type === 'write') {
              const at = fault.at;
              fault = undefined;
              return { partialBytes: at, error: fsError('EIO', 'torn write') };
            }
            if (fault.kind === 'sync' && op.type === 'datasync') {
              fault = undefined;
              throw fsError('EIO', 'datasync failed');
            }
            return undefined;
          },
        };
        const fs = instrumentFileSystem(nodeFileSystem, hooks);
        let sb = await openOrFail(fs, dir);
        // The model: the last acknowledged payload, and payloads whose write failed since then
        // (any of them may have landed whole; none may come back mangled).
        let acked: Uint8Array | undefined;
        let maybe: Uint8Array[] = [];
        const check = (read: SuperblockRead): void => {
          if (read.kind === 'valid') {
            const ok = [acked, ...maybe].some((p) => p !== undefined && Buffer.from(p).equals(Buffer.from(read.payload)));
            expect(ok, `read ${Buffer.from(read.payload).toString('hex')} is neither the acknowledged nor a failed write`).to.equal(true);
            return;
          }
          expect(acked, `lost the acknowledged state: ${read.kind}`).to.equal(undefined);
          // Nothing was ever acknowledged: none, or damaged if a first write tore midway.
          expect(read.kind).to.be.oneOf(['none', 'damaged']);
        };
        for (const s of steps) {
          switch (s.kind) {
            case 'write':
              await sb.write(s.payload);
              acked = s.payload;
              maybe = [];
              break;
            case 'tear':
            case 'sync_fails': {
              fault = s.kind === 'tear' ? { kind: 'tear', at: s.at } : { kind: 'sync' };
              let failed = false;
              await sb.write(s.payload).catch(() => {
                failed = true;
              });
              expect(failed).to.equal(true);
              maybe.push(s.payload);
              break;
            }
            case 'reopen': {
              await sb.close();
              const read = await readSuperblock(fs, dir);
              check(read);
              acked = payloadOf(read);
              maybe = [];
              sb = await openOrFail(fs, dir);
              break;
            }
          }
        }
        await sb.close();
        check(await readSuperblock(fs, dir));
      }),
      { numRuns: 200 },
    );
  });

  it('ignores a corrupted copy and falls back to the other one', async () => {
    const dir = await freshDir();
    const sb = await openOrFail(nodeFileSystem, dir);
    await sb.write(bytes('older')); // sequence 1, slot 1
    await sb.write(bytes('newer')); // sequence 2, slot 0
    await sb.close();
    const path = join(dir, SUPERBLOCK_FILE);
    await patchFile(path, 30, new Uint8Array([0xff, 0x00, 0xff]));
    const read = await readSuperblock(nodeFileSystem, dir);
    expect(read.kind).to.equal('valid');
    if (read.kind !== 'valid') return;
    expect(read.sequence).to.equal(1);
    expect(new TextDecoder().decode(read.payload)).to.equal('older');
    expect(read.copies[0]).to.deep.include({ slot: 0, status: 'invalid', reason: 'checksum mismatch' });
    // The next write goes to slot 0 again (sequence 2), never over the valid copy in slot 1.
    const again = await openOrFail(nodeFileSystem, dir);
    await again.write(bytes('rewritten'));
    await again.close();
    const after = await readSuperblock(nodeFileSystem, dir);
    expect(after.kind === 'valid' && after.sequence).to.equal(2);
  });

  it('rejects a copy in the wrong slot and a length out of bounds', async () => {
    const dir = await freshDir();
    const path = join(dir, SUPERBLOCK_FILE);
    const wrongSlot = encodeSuperblockCopy(2, bytes('misdirected')); // sequence 2 belongs in slot 0
    const hugeLength = encodeSuperblockCopy(1, bytes('x'));
    new DataView(hugeLength.buffer).setUint32(20, 0xffffffff);
    await patchFile(path, SUPERBLOCK_COPY_BYTES, wrongSlot);
    await patchFile(path, 0, hugeLength);
    const read = await readSuperblock(nodeFileSystem, dir);
    expect(read.kind).to.equal('damaged');
    if (read.kind !== 'damaged') return;
    expect(read.path).to.equal(path);
    expect(read.reason).to.match(/out of bounds/).and.to.match(/wrong slot/);
  });

  it('all copies corrupted: damaged, naming the file', async () => {
    const dir = await freshDir();
    const sb = await openOrFail(nodeFileSystem, dir);
    await sb.write(bytes('a'));
    await sb.write(bytes('b'));
    await sb.close();
    const path = join(dir, SUPERBLOCK_FILE);
    await patchFile(path, 25, new Uint8Array([0xaa]));
    await patchFile(path, SUPERBLOCK_COPY_BYTES + 25, new Uint8Array([0xaa]));
    const read = await readSuperblock(nodeFileSystem, dir);
    expect(read).to.deep.include({ kind: 'damaged', path });
    const opened = await Superblock.open(nodeFileSystem, dir);
    expect(opened.kind === 'opened' && opened.found.kind).to.equal('damaged');
    if (opened.kind === 'opened') await opened.superblock.close();
  });

  it('a newer on-disk format is refused, naming the file, and never overwritten', async () => {
    const dir = await freshDir();
    const sb = await openOrFail(nodeFileSystem, dir);
    await sb.write(bytes('ours'));
    await sb.close();
    const path = join(dir, SUPERBLOCK_FILE);
    await patchFile(path, 0, encodeSuperblockCopy(2, bytes('theirs'), 2));
    const before = await readFile(path);
    expect(await readSuperblock(nodeFileSystem, dir)).to.deep.equal({ kind: 'newer_format', path, version: 2 });
    expect(await Superblock.open(nodeFileSystem, dir)).to.deep.equal({ kind: 'newer_format', path, version: 2 });
    expect(Buffer.compare(await readFile(path), before)).to.equal(0);
  });

  it('reads exactly the copies, whatever the file size', async () => {
    const dir = await freshDir();
    const path = join(dir, SUPERBLOCK_FILE);
    await writeFile(path, new Uint8Array(10 * 1024 * 1024).fill(0x41));
    let readEnd = 0;
    const fs = instrumentFileSystem(nodeFileSystem, {
      before(op) {
        if (op.type === 'read') readEnd = Math.max(readEnd, op.position + op.length);
      },
    });
    expect((await readSuperblock(fs, dir)).kind).to.equal('damaged');
    expect(readEnd).to.be.at.most(2 * SUPERBLOCK_COPY_BYTES);
  });
});

describe('replica directory identity', () => {
  const me: DirectoryIdentity = { node: 'n1', namespace: 'orders', replica: 1 };

  it('creates the identity in a new directory, then accepts it again', async () => {
    const dir = join(await freshDir(), 'nested', 'replica-1');
    const first = await claimDirectory(nodeFileSystem, dir, me);
    expect(first).to.deep.include({ kind: 'claimed', created: true, path: join(dir, IDENTITY_FILE) });
    const text = await readFile(join(dir, IDENTITY_FILE), 'utf8');
    expect(JSON.parse(text)).to.deep.include({ format: 1, node: 'n1', namespace: 'orders', replica: 1, creationId: null });
    const second = await claimDirectory(nodeFileSystem, dir, me);
    expect(second).to.deep.include({ kind: 'claimed', created: false });
    expect(second.kind === 'claimed' && second.identity).to.deep.equal(me);
  });

  it('creates durably: tmp written and synced, renamed, directory synced', async () => {
    const dir = await freshDir();
    const ops: string[] = [];
    const fs = instrumentFileSystem(nodeFileSystem, {
      after(op) {
        if (op.type === 'datasync' || op.type === 'rename' || op.type === 'fsync_dir') ops.push(op.type);
      },
    });
    await claimDirectory(fs, dir, me);
    expect(ops).to.deep.equal(['datasync', 'rename', 'fsync_dir']);
  });

  it('refuses another node, namespace, replica index or creation, naming the file', async () => {
    const dir = await freshDir();
    const path = join(dir, IDENTITY_FILE);
    await claimDirectory(nodeFileSystem, dir, { ...me, creationId: 'c1' });
    const cases: readonly [DirectoryIdentity, string][] = [
      [{ ...me, node: 'n2' }, 'other_node'],
      [{ ...me, namespace: 'billing' }, 'other_namespace'],
      [{ ...me, replica: 2 }, 'other_replica'],
      [{ ...me, creationId: 'c2' }, 'other_creation'],
    ];
    for (const [expected, kind] of cases) {
      const r = await claimDirectory(nodeFileSystem, dir, expected);
      expect(r.kind).to.equal(kind);
      expect(r.path).to.equal(path);
      expect(r.kind !== 'claimed' && r.message).to.include(path);
    }
    expect((await claimDirectory(nodeFileSystem, dir, me)).kind).to.equal('claimed');
  });

  it('refuses a newer format, naming the file', async () => {
    const dir = await freshDir();
    const path = join(dir, IDENTITY_FILE);
    await writeFile(path, JSON.stringify({ format: 2, anything: 'new' }));
    const r = await claimDirectory(nodeFileSystem, dir, me);
    expect(r).to.deep.include({ kind: 'newer_format', path, version: 2 });
    expect(r.kind === 'newer_format' && r.message).to.include(path);
  });

  it('refuses a damaged identity: edited by hand, not JSON, missing fields, too large (without reading it whole)', async () => {
    const edited = encodeIdentity(me).replace('"replica":1', '"replica":2');
    const variants: readonly [string, string | Uint8Array, RegExp][] = [
      ['edited', edited, /checksum mismatch/],
      ['garbage', 'not json {', /not JSON/],
      ['fields', JSON.stringify({ format: 1, node: 'n1' }), /unexpected fields/],
      ['huge', new Uint8Array(5 * 1024 * 1024).fill(0x20), /larger than/],
    ];
    for (const [name, content, reason] of variants) {
      const dir = await freshDir();
      const path = join(dir, IDENTITY_FILE);
      await writeFile(path, content);
      let readEnd = 0;
      const fs = instrumentFileSystem(nodeFileSystem, {
        before(op) {
          if (op.type === 'read') readEnd = Math.max(readEnd, op.position + op.length);
        },
      });
      const r = await claimDirectory(fs, dir, me);
      expect(r.kind, name).to.equal('damaged');
      if (r.kind !== 'damaged') continue;
      expect(r.path).to.equal(path);
      expect(r.reason, name).to.match(reason);
      expect(r.message).to.include(path);
      expect(readEnd, name).to.be.at.most(4097);
    }
  });

  it('refuses a non-empty directory without identity; a leftover identity tmp alone is a crash during creation', async () => {
    const dir = await freshDir();
    await writeFile(join(dir, 'segment-0000.log'), 'x');
    const r = await claimDirectory(nodeFileSystem, dir, me);
    expect(r).to.deep.include({ kind: 'unidentified', path: join(dir, IDENTITY_FILE) });
    const crashed = await freshDir();
    await writeFile(join(crashed, `${IDENTITY_FILE}.tmp`), '{"form');
    expect(await claimDirectory(nodeFileSystem, crashed, me)).to.deep.include({ kind: 'claimed', created: true });
  });

  it('an I/O failure while creating rejects with a typed StorageError, and a retry succeeds', async () => {
    const dir = await freshDir();
    let fail = true;
    const fs = instrumentFileSystem(nodeFileSystem, {
      before(op) {
        if (fail && op.type === 'datasync') {
          fail = false;
          throw fsError('ENOSPC');
        }
      },
    });
    const error = await claimDirectory(fs, dir, me).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).to.have.property('name', 'StorageError');
    expect(error).to.have.property('code', 'ENOSPC');
    expect((await claimDirectory(fs, dir, me)).kind).to.equal('claimed');
  });
});
