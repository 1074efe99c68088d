/**
 * The shared-memory ring on its own (runtime/ring.ts): records come out as they went in, in
 * order, lap after lap; a full ring refuses and takes again once read; the record limit holds
 * to the byte; a reader in another thread; a writer killed mid-record never shows a torn
 * record; a sleeping reader wakes on the doorbell, and an awake one costs its writer no notify.
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { Worker } from 'node:worker_threads';
import { bootstrapScript, tsxRegisterUrl } from '../../runtime/bootstrap.ts';
import { createRing, maxRecordBytesFor, ringConfig, ringHeaderBytes, RingReader, RingWriter, validateRingConfig } from '../../runtime/ring.ts';
import { checkRecord, fillRecord } from './fixtures/ring_records.ts';

const peer = new URL('./fixtures/ring_peer.ts', import.meta.url).href;

function startPeer(workerData: Record<string, unknown>): Worker {
  return new Worker(bootstrapScript, { eval: true, workerData: { haretEntry: peer, haretTsx: tsxRegisterUrl(peer), ...workerData } });
}

function nextMessage(worker: Worker, timeoutMs = 15_000): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no message from the peer worker')), timeoutMs);
    worker.once('message', (message: unknown) => {
      clearTimeout(timer);
      resolve(message);
    });
    worker.once('error', (error) => {
      clearTimeout(timer);
      reject(error);
    });
    worker.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the peer worker exited (${code}) before answering`));
    });
  });
}

/** A payload whose bytes say which record it is. */
function payloadOf(seq: number, size: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i += 1) bytes[i] = (seq * 7 + i) & 0xff;
  return bytes;
}

/** Reads everything published now. */
function drain(reader: RingReader): Uint8Array[] {
  const out: Uint8Array[] = [];
  for (let record = reader.next(); record !== null; record = reader.next()) out.push(record.payload);
  return out;
}

describe('runtime: shared-memory ring', function () {
  this.timeout(30_000);

  it('validates its limits: a power-of-two ring, a record limit of at most half the ring', () => {
    expect(validateRingConfig(ringConfig())).to.equal(null);
    expect(ringConfig()).to.deep.equal({ ringBytes: 1 << 20, maxRecordBytes: 1 << 18 });
    expect(maxRecordBytesFor(4096)).to.equal(2040);
    expect(() => ringConfig(3000)).to.throw(RangeError, /power of two/);
    expect(() => ringConfig(1024)).to.throw(RangeError, /power of two/);
    expect(() => ringConfig(4096, 2041)).to.throw(RangeError, /maxRecordBytes/);
    expect(() => ringConfig(4096, 0)).to.throw(RangeError, /maxRecordBytes/);
    expect(() => new RingReader(new SharedArrayBuffer(ringHeaderBytes + 4096))).to.throw(RangeError, /not a ring/);
  });

  it('property: records of random sizes, written and read in random interleavings over many laps, come out equal and in order', () => {
    let laps = 0;
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.record({ write: fc.integer({ min: 0, max: 2040 }), inPlace: fc.boolean() }), fc.record({ read: fc.integer({ min: 1, max: 8 }) })), { minLength: 50, maxLength: 300 }),
        fc.constantFrom(0, 0x7ffff000, -4096),
        (commands, start) => {
          const ring = createRing(ringConfig(4096, 2040));
          // Counters that start near 2^31 or 2^32 must cross it unharmed.
          const words = new Int32Array(ring, 0, 64);
          words[0] = start;
          words[16] = start;
          const writer = new RingWriter(ring);
          const reader = new RingReader(ring);
          const expected: Uint8Array[] = [];
          let seq = 0;
          let bytes = 0;
          let readSeq = 0;
          const takeCounted = (count: number): void => {
            for (let i = 0; i < count; i += 1) {
              const record = reader.next();
              if (record === null) {
                expect(expected, 'a record the reader did not see').to.have.length(0);
                return;
              }
              expect(record.tag).to.equal(readSeq % 3);
              expect(record.payload).to.deep.equal(expected.shift());
              readSeq += 1;
            }
          };
          for (const command of commands) {
            if ('read' in command) {
              takeCounted(command.read);
              continue;
            }
            const payload = payloadOf(seq, command.write);
            let outcome: string;
            if (command.inPlace) {
              const room = writer.claim(command.write);
              if (room === null) outcome = 'full';
              else {
                room.set(payload);
                outcome = writer.publish(command.write, seq % 3);
              }
            } else outcome = writer.tryWrite(payload, seq % 3);
            if (outcome === 'full') {
              // Full means full: once everything is read, the same record goes in.
              takeCounted(expected.length);
              outcome = writer.tryWrite(payload, seq % 3);
            }
            expect(outcome).to.equal('written');
            expected.push(payload);
            bytes += command.write + 8;
            seq += 1;
          }
          takeCounted(expected.length + 1);
          expect(reader.next()).to.equal(null);
          laps += bytes / 4096;
        },
      ),
      { numRuns: 150 },
    );
    // Sizes up to half the ring: the runs went round the 4 KiB ring thousands of times.
    expect(laps).to.be.above(1000);
  });

  it('a full ring refuses a record (nothing written), and takes it once the reader has read', () => {
    const ring = createRing(ringConfig(4096, 1024));
    const writer = new RingWriter(ring);
    const reader = new RingReader(ring);
    let written = 0;
    while (writer.tryWrite(payloadOf(written, 1016)) === 'written') written += 1;
    // 1024 bytes a record with its header: four fill the 4 KiB ring to the byte.
    expect(written).to.equal(4);
    expect(writer.tryWrite(payloadOf(99, 1016))).to.equal('full');
    expect(writer.claim(0)).to.equal(null);
    expect(writer.tryWrite(new Uint8Array(0))).to.equal('full');
    const first = reader.next();
    expect(first?.payload).to.deep.equal(payloadOf(0, 1016));
    expect(writer.tryWrite(payloadOf(4, 1016))).to.equal('written');
    expect(writer.tryWrite(new Uint8Array(0))).to.equal('full');
    expect(drain(reader)).to.deep.equal([1, 2, 3, 4].map((seq) => payloadOf(seq, 1016)));
  });

  it('takes a record of exactly the size limit and refuses one byte more as too_large, on both write paths', () => {
    const ring = createRing(ringConfig(4096, 2040));
    const writer = new RingWriter(ring);
    const reader = new RingReader(ring);
    expect(writer.tryWrite(new Uint8Array(2041))).to.equal('too_large');
    expect(writer.tryWrite(payloadOf(1, 2040))).to.equal('written');
    expect(drain(reader)).to.deep.equal([payloadOf(1, 2040)]);
    // The head now stands mid-ring: the largest record still fits, after a wrap marker.
    expect(writer.tryWrite(payloadOf(2, 2040))).to.equal('written');
    expect(drain(reader)).to.deep.equal([payloadOf(2, 2040)]);
    const room = writer.claim(1);
    expect(room?.byteLength).to.equal(2040);
    expect(() => writer.publish(2041)).to.throw(RangeError);
    expect(writer.claim(2041)).to.equal(null);
    expect(writer.tryWrite(new Uint8Array(0))).to.equal('written');
    expect(drain(reader)).to.deep.equal([new Uint8Array(0)]);
  });

  it('a closed ring refuses writes and wakes a sleeping reader', async () => {
    const ring = createRing(ringConfig(4096, 1024));
    const writer = new RingWriter(ring);
    const reader = new RingReader(ring);
    const sleeping = reader.sleep();
    expect(sleeping).to.not.equal(null);
    writer.close();
    await sleeping;
    expect(reader.closed).to.equal(true);
    expect(writer.tryWrite(new Uint8Array(8))).to.equal('closed');
    expect(reader.sleep()).to.equal(null);
  });

  it('a reader in another worker thread gets 20,000 records of random sizes intact and in order, through backpressure', async () => {
    const ring = createRing(ringConfig(64 * 1024, 8 * 1024));
    const count = 20_000;
    const worker = startPeer({ role: 'read', ring, count });
    try {
      const done = nextMessage(worker);
      const writer = new RingWriter(ring);
      let fulls = 0;
      let random = 12345;
      for (let seq = 0; seq < count; seq += 1) {
        random = (Math.imul(random, 1103515245) + 12345) >>> 0;
        const payload = new Uint8Array(12 + (random % (8 * 1024 - 12)));
        fillRecord(payload, seq);
        for (;;) {
          const outcome = writer.tryWrite(payload);
          if (outcome === 'written') break;
          expect(outcome).to.equal('full');
          fulls += 1;
          await (writer.waitForSpace() ?? Promise.resolve());
        }
      }
      const summary = (await done) as { good: number; bad: string[]; bytes: number; wakeups: number };
      expect(summary.bad).to.deep.equal([]);
      expect(summary.good).to.equal(count);
      // ~80 MB through a 64 KiB ring: the writer waited for space (how often depends on how
      // busy the machine keeps each thread: 46 under a loaded CI run, hundreds when quiet).
      expect(fulls).to.be.above(0);
    } finally {
      await worker.terminate();
    }
  });

  it('a writer terminated mid-stream: the survivor reads only complete records, every one checked, then abandons the ring', async () => {
    for (const seed of [1, 2, 3]) {
      const ring = createRing(ringConfig(256 * 1024, 64 * 1024));
      const reader = new RingReader(ring);
      const worker = startPeer({ role: 'write', ring, seed });
      expect(await nextMessage(worker)).to.equal('writing');
      let read = 0;
      const readAll = (): void => {
        for (let record = reader.next(); record !== null; record = reader.next()) {
          expect(checkRecord(record.payload, read)).to.equal(null);
          read += 1;
        }
      };
      // Read while it writes, then kill it at some moment of its endless loop.
      const until = performance.now() + 150 + seed * 37;
      while (performance.now() < until) {
        readAll();
        await new Promise((resolve) => setImmediate(resolve));
      }
      await worker.terminate();
      readAll();
      expect(read).to.be.above(10);
      // Whatever it was writing when it died is not published, and stays unread.
      expect(reader.next()).to.equal(null);
      expect(reader.ready).to.equal(false);
      reader.close();
      expect(reader.closed).to.equal(true);
    }
  });

  it('a sleeping reader is woken by the writer in another thread; an awake reader costs the writer no notify', async () => {
    const ring = createRing(ringConfig(4096, 1024));
    const reader = new RingReader(ring);
    const worker = startPeer({ role: 'write_later', ring });
    try {
      expect(await nextMessage(worker)).to.equal('ready');
      const sleeping = reader.sleep();
      expect(sleeping, 'nothing written yet: the reader sleeps').to.not.equal(null);
      const answer = nextMessage(worker);
      worker.postMessage('go');
      await sleeping;
      expect(reader.wakeups).to.equal(1);
      expect(checkRecord(reader.next()?.payload ?? new Uint8Array(0), 0)).to.equal(null);
      expect(await answer).to.deep.equal({ outcome: 'written', notifies: 1 });
    } finally {
      await worker.terminate();
    }
    // Same thread, awake reader: the writer sees no sleeping flag and does not notify.
    const awake = createRing(ringConfig(4096, 1024));
    const writer = new RingWriter(awake);
    const readerAwake = new RingReader(awake);
    for (let i = 0; i < 10; i += 1) writer.tryWrite(payloadOf(i, 16));
    expect(drain(readerAwake)).to.have.length(10);
    expect(writer.notifies).to.equal(0);
    // A reader that finds a record already there does not sleep at all.
    writer.tryWrite(payloadOf(10, 16));
    expect(readerAwake.sleep()).to.equal(null);
  });
});
