/**
 * The binary record layout of the ring transport (ring_link.ts): one batch of envelopes <->
 * the bytes of one ring record, for the messages of the commit path (issue 16: "a fixed binary
 * record layout for the hot messages").
 *
 * A record is `[u32 envelopes][u32 tailStart][entry...][tail]`, little-endian:
 * - An entry starts with a one-byte kind. `define_id` (a utf8 actor id) gives the link's next
 *   interned index to an id; `generic` stands for the tail's next value, a whole envelope; every
 *   other kind is one envelope `{ from, to, msg }` with a hot message: the two actor ids as
 *   references (u16 interned index, or 0xffff and the id inline), then the message's fields in
 *   a fixed order. Numbers are u32 when every number of the message is an integer in
 *   [0, 2^32), else the kind carries `wideNumbers` and all are f64 (views, ops and commits may
 *   pass 2^32 in principle; f64 holds every number exactly, -0 and NaN included).
 *   Strings are `[u32 bytes][utf8]`.
 * - The tail is one msgpack array (msgpackr, the same options as the msgpack layout, so these
 *   values round-trip exactly as they did before) of the values whose shape is open: request
 *   ops, reply bodies and the generic envelopes, in entry order. One msgpackr call per record,
 *   not per value: a record of like ops shares its msgpack record definitions, and each call
 *   has a fixed cost.
 *
 * What is hot: `prepare_ok`, `commit`, `read_round`, `read_round_ok`, `request`, `reply`,
 * `prepare`, `not_primary`, `busy` (src/vr/messages.ts) and `tick` (actors/messages.ts). The
 * runtime must not import the core (DESIGN.md), so the shapes are matched here by their fields:
 * a message is hot only if it is a plain object with exactly the expected keys, each of the
 * expected type (strings well-formed, numbers numbers), and so is every nested entry and
 * request. Anything else, and every envelope with `control` or other extra keys, goes
 * `generic`: a core message that grows a field merely leaves the fast path, it never changes
 * meaning. Decoded objects have their fields in one fixed order per kind (the order the core
 * builds them in); nothing reads a message by key order.
 *
 * Interning: the writer of a link direction numbers actor ids as it first uses them and
 * writes their `define_id` in the same record, before the first use; the reader keeps the same
 * table. Both tables start empty with the link (a restarted peer gets a new link). A record's
 * definitions count only once it is published (`published()`): a record that waits for space
 * is encoded again later and defines its ids again. Past `internedIdsMax` ids are written
 * inline: a node has a few dozen actors, so the bound only matters against a runaway.
 *
 * Decoding is all or nothing: a length, kind or index out of range, a truncated record, bytes
 * left over, malformed utf8 or msgpack, or a generic value that is no envelope make the whole
 * record malformed (`decode` returns null and no definition of it is kept); it never throws.
 * Nothing decoded refers to the record's memory (msgpackr copies byte values out), and the
 * record itself is already a private copy of the ring's bytes (ring.ts).
 */

import { Packr, Unpackr } from 'msgpackr';
import { isEnvelope, type Envelope } from './envelope.ts';

/** Actor ids one link direction interns at most; later ones travel inline. */
export const internedIdsMax = 4096;

// Entry kinds (the first byte of an entry).
const kindDefineId = 1;
const kindGeneric = 2;
const kindTick = 3;
const kindPrepareOk = 4;
const kindCommit = 5;
const kindReadRound = 6;
const kindReadRoundOk = 7;
const kindRequest = 8;
const kindReply = 9;
const kindPrepare = 10;
const kindNotPrimary = 11;
const kindBusy = 12;
/** Or-ed into a message's kind: its numbers are f64, not u32. */
const wideNumbers = 0x80;
/** An actor id reference that says: the id follows inline. */
const inlineId = 0xffff;
const recordHeaderBytes = 8;

/** Private memory for a record that is not encoded in place: kept between records, dropped when a huge one grew it. */
const scratchBytes = 64 * 1024;
const scratchKeptBytesMax = 1 << 20;
/** Strings up to this many bytes are decoded by hand when they are ASCII (cheaper than a TextDecoder call). */
const shortStringBytes = 64;

const msgpackOptions = { useRecords: true, moreTypes: false, copyBuffers: true } as const;
const utf8Encoder = new TextEncoder();
// ignoreBOM: a leading U+FEFF is part of the string, not a mark to strip.
const utf8Decoder = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

/** String.prototype.isWellFormed (Node 20; the es2023 lib this project compiles against does not declare it). */
const isWellFormed = (value: string): boolean => (value as unknown as { isWellFormed(): boolean }).isWellFormed();

/** Thrown inside an entry: leave the hot layout for this envelope (`wide`: retry with f64 numbers; else generic). */
class Fallback {
  readonly wide: boolean;
  constructor(wide: boolean) {
    this.wide = wide;
  }
}
const toGeneric = new Fallback(false);
const toWide = new Fallback(true);
/** Thrown when the target is a ring's room and the record does not fit there: encode again into scratch. */
const overflow = new Error('the record does not fit the room it was given');
/** Thrown by the decoder: the record is malformed. */
const malformed = new Error('malformed ring record');

type Fields = Record<string, unknown>;

/** The hot kind of a message type, or 0. */
function hotKindOf(type: unknown): number {
  switch (type) {
    case 'tick':
      return kindTick;
    case 'prepare_ok':
      return kindPrepareOk;
    case 'commit':
      return kindCommit;
    case 'read_round':
      return kindReadRound;
    case 'read_round_ok':
      return kindReadRoundOk;
    case 'request':
      return kindRequest;
    case 'reply':
      return kindReply;
    case 'prepare':
      return kindPrepare;
    case 'not_primary':
      return kindNotPrimary;
    case 'busy':
      return kindBusy;
    default:
      // A view change, state transfer, a call to the proxy, anything else: generic.
      return 0;
  }
}

/** Keys of each hot message, `type` included, indexed by kind. */
const hotKeyCounts: readonly number[] = (() => {
  const counts: number[] = [];
  counts[kindTick] = 1;
  counts[kindPrepareOk] = 5;
  counts[kindCommit] = 6;
  counts[kindReadRound] = 5;
  counts[kindReadRoundOk] = 5;
  counts[kindRequest] = 4;
  counts[kindReply] = 7;
  counts[kindPrepare] = 8;
  counts[kindNotPrimary] = 6;
  counts[kindBusy] = 6;
  return counts;
})();

function isPlainObject(value: unknown): value is Fields {
  return typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype;
}

/** Own and inherited enumerable string keys: what msgpack would write for the object. */
function keyCount(value: Fields): number {
  let count = 0;
  for (const _ in value) count += 1;
  return count;
}

/** A plain object with exactly `keys` keys; else the message goes generic. */
function fields(value: unknown, keys: number): Fields {
  if (!isPlainObject(value) || keyCount(value) !== keys) throw toGeneric;
  return value;
}

/** The output of one encode: a fixed room (overflow throws) or growable scratch. */
class Output {
  bytes: Uint8Array;
  data: DataView;
  pos = 0;
  wide = false;
  readonly growable: boolean;

  constructor(bytes: Uint8Array, growable: boolean) {
    this.bytes = bytes;
    this.data = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.growable = growable;
  }

  need(count: number): void {
    const end = this.pos + count;
    if (end <= this.bytes.byteLength) return;
    if (!this.growable) throw overflow;
    const grown = new Uint8Array(Math.max(end, this.bytes.byteLength * 2));
    grown.set(this.bytes.subarray(0, this.pos));
    this.bytes = grown;
    this.data = new DataView(grown.buffer);
  }

  u8(value: number): void {
    this.need(1);
    this.bytes[this.pos] = value;
    this.pos += 1;
  }

  u16(value: number): void {
    this.need(2);
    this.data.setUint16(this.pos, value, true);
    this.pos += 2;
  }

  u32(value: number): void {
    this.need(4);
    this.data.setUint32(this.pos, value, true);
    this.pos += 4;
  }

  /** A message's number: u32, or f64 in a wide message; a number that needs f64 in a narrow one restarts the message wide. */
  num(value: unknown): void {
    if (typeof value !== 'number') throw toGeneric;
    if (this.wide) {
      this.need(8);
      this.data.setFloat64(this.pos, value, true);
      this.pos += 8;
      return;
    }
    // -0 passes the u32 test but would come back +0: it goes wide too.
    if (value >>> 0 !== value || (value === 0 && 1 / value < 0)) throw toWide;
    this.u32(value);
  }

  str(value: unknown): void {
    if (typeof value !== 'string') throw toGeneric;
    const length = value.length;
    this.need(4 + length);
    const start = this.pos + 4;
    const bytes = this.bytes;
    let end = start;
    for (let i = 0; i < length; i += 1) {
      const code = value.charCodeAt(i);
      if (code >= 0x80) {
        end = this.#utf8(value, start);
        break;
      }
      bytes[end] = code;
      end += 1;
    }
    this.data.setUint32(this.pos, end - start, true);
    this.pos = end;
  }

  /** Beyond ASCII: the whole string through the platform's encoder; one with a lone surrogate goes generic (utf8 cannot hold it). */
  #utf8(value: string, start: number): number {
    if (!isWellFormed(value)) throw toGeneric;
    this.need(4 + value.length * 3);
    return start + utf8Encoder.encodeInto(value, this.bytes.subarray(start)).written;
  }
}

/** The input of one decode; every read past the end is malformed. */
class Input {
  readonly bytes: Uint8Array;
  readonly data: DataView;
  pos: number;
  readonly end: number;
  wide = false;

  constructor(bytes: Uint8Array, pos: number, end: number) {
    this.bytes = bytes;
    this.data = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = pos;
    this.end = end;
  }

  #take(count: number): number {
    const at = this.pos;
    if (at + count > this.end) throw malformed;
    this.pos = at + count;
    return at;
  }

  u8(): number {
    return this.bytes[this.#take(1)] as number;
  }

  u16(): number {
    return this.data.getUint16(this.#take(2), true);
  }

  u32(): number {
    return this.data.getUint32(this.#take(4), true);
  }

  num(): number {
    return this.wide ? this.data.getFloat64(this.#take(8), true) : this.data.getUint32(this.#take(4), true);
  }

  str(): string {
    const length = this.u32();
    const start = this.#take(length);
    const end = start + length;
    const bytes = this.bytes;
    if (length <= shortStringBytes) {
      let ascii = true;
      for (let i = start; i < end; i += 1) {
        if ((bytes[i] as number) >= 0x80) {
          ascii = false;
          break;
        }
      }
      if (ascii) return String.fromCharCode.apply(null, bytes.subarray(start, end) as unknown as number[]);
    }
    return utf8Decoder.decode(bytes.subarray(start, end));
  }
}

/**
 * Writes batches of one link direction. `pack` encodes into a ring's room when the record fits
 * there (the result is then a view of it), else into private memory; it throws when msgpackr
 * cannot encode a value (the caller finds the envelope, as with the msgpack layout).
 */
export class RecordEncoder {
  readonly #idsMax: number;
  readonly #packr = new Packr(msgpackOptions);
  /** Interned ids, the published ones and those of the last pack. */
  readonly #ids = new Map<string, number>();
  /** Ids the last pack defined, in order: forgotten unless that record is published. */
  readonly #pending: string[] = [];
  /** Tail values of the record being encoded. */
  readonly #values: unknown[] = [];
  #scratch = new Uint8Array(scratchBytes);
  #out: Output = new Output(this.#scratch, true);
  /** Envelopes of the last pack in a hot layout, and in all. */
  #packedHot = 0;
  #packed = 0;
  #hot = 0;
  #generic = 0;

  constructor(idsMax = internedIdsMax) {
    if (!Number.isSafeInteger(idsMax) || idsMax < 0 || idsMax >= inlineId) throw new RangeError(`idsMax must be an integer between 0 and ${inlineId - 1}`);
    this.#idsMax = idsMax;
  }

  /** Ids interned and published (the reader knows them). */
  get internedIds(): number {
    return this.#ids.size - this.#pending.length;
  }

  /** Envelopes published in a hot layout, and as generic. */
  get counts(): { readonly hot: number; readonly generic: number } {
    return { hot: this.#hot, generic: this.#generic };
  }

  pack(batch: readonly Envelope[], room: Uint8Array | null): Uint8Array {
    if (room !== null) {
      try {
        return this.#encode(batch, new Output(room, false));
      } catch (error) {
        if (error !== overflow) throw error;
      }
    }
    if (this.#scratch.byteLength > scratchKeptBytesMax) this.#scratch = new Uint8Array(scratchBytes);
    const result = this.#encode(batch, new Output(this.#scratch, true));
    // Keep what scratch grew to, for the next large batch (up to the bound above).
    this.#scratch = new Uint8Array(result.buffer as ArrayBuffer);
    return result;
  }

  /** The last packed record went out (in the ring, or on the port behind its marker): its definitions hold. */
  published(): void {
    this.#pending.length = 0;
    this.#hot += this.#packedHot;
    this.#generic += this.#packed - this.#packedHot;
    this.#packedHot = 0;
    this.#packed = 0;
  }

  #encode(batch: readonly Envelope[], out: Output): Uint8Array {
    this.#forget(0);
    this.#packedHot = 0;
    this.#packed = 0;
    this.#values.length = 0;
    this.#out = out;
    out.need(recordHeaderBytes);
    out.pos = recordHeaderBytes;
    let hot = 0;
    for (const envelope of batch) {
      const start = out.pos;
      const values = this.#values.length;
      const pending = this.#pending.length;
      let wide = false;
      for (;;) {
        try {
          out.wide = wide;
          this.#hotEntry(envelope);
          hot += 1;
          break;
        } catch (error) {
          if (!(error instanceof Fallback)) throw error;
          out.pos = start;
          this.#values.length = values;
          this.#forget(pending);
          if (error.wide && !wide) {
            wide = true;
            continue;
          }
          out.u8(kindGeneric);
          this.#values.push(envelope);
          break;
        }
      }
    }
    const tailStart = out.pos;
    if (this.#values.length > 0) {
      const tail = this.#packr.pack(this.#values);
      this.#values.length = 0;
      out.need(tail.byteLength);
      out.bytes.set(tail, out.pos);
      out.pos += tail.byteLength;
    }
    out.data.setUint32(0, batch.length, true);
    out.data.setUint32(4, tailStart, true);
    this.#packedHot = hot;
    this.#packed = batch.length;
    return out.bytes.subarray(0, out.pos);
  }

  /** Drops the definitions made since `pending` (their bytes were discarded). */
  #forget(pending: number): void {
    for (let i = pending; i < this.#pending.length; i += 1) this.#ids.delete(this.#pending[i] as string);
    this.#pending.length = pending;
  }

  /** One envelope in a hot layout, or a Fallback thrown. */
  #hotEntry(envelope: Envelope): void {
    const e = fields(envelope, 3);
    const from = e['from'];
    const to = e['to'];
    if (typeof from !== 'string' || typeof to !== 'string' || !Object.hasOwn(e, 'msg')) throw toGeneric;
    const msg = e['msg'];
    if (!isPlainObject(msg)) throw toGeneric;
    const kind = hotKindOf(msg['type']);
    if (kind === 0 || keyCount(msg) !== hotKeyCounts[kind]) throw toGeneric;
    // Definitions go before the entry that first uses them.
    const fromIndex = this.#intern(from);
    const toIndex = this.#intern(to);
    const out = this.#out;
    out.u8(out.wide ? kind | wideNumbers : kind);
    this.#ref(fromIndex, from);
    this.#ref(toIndex, to);
    this.#fields(kind, msg);
  }

  /** A hot message's fields after its kind, in the order the decoder builds them. */
  #fields(kind: number, msg: Fields): void {
    const out = this.#out;
    switch (kind) {
      case kindTick:
        return;
      case kindPrepareOk:
        out.num(msg['epoch']);
        out.num(msg['view']);
        out.num(msg['replica']);
        out.num(msg['op']);
        return;
      case kindCommit:
        out.num(msg['epoch']);
        out.num(msg['view']);
        out.num(msg['replica']);
        out.num(msg['commit']);
        out.num(msg['globalMinAccept']);
        return;
      case kindReadRound:
      case kindReadRoundOk:
        out.num(msg['epoch']);
        out.num(msg['view']);
        out.num(msg['replica']);
        out.num(msg['round']);
        return;
      case kindRequest:
        this.#request(msg);
        return;
      case kindReply:
        out.num(msg['epoch']);
        out.num(msg['view']);
        out.num(msg['op']);
        out.str(msg['clientId']);
        out.num(msg['requestNum']);
        this.#opaque(msg, 'body');
        return;
      case kindPrepare: {
        out.num(msg['epoch']);
        out.num(msg['view']);
        out.num(msg['replica']);
        out.num(msg['op']);
        out.num(msg['commit']);
        const entry = fields(msg['entry'], 3);
        out.num(entry['op']);
        out.num(entry['view']);
        const requests = entry['requests'];
        if (!Array.isArray(requests)) throw toGeneric;
        out.u32(requests.length);
        for (let i = 0; i < requests.length; i += 1) {
          const request = fields(requests[i], 4);
          if (request['type'] !== 'request') throw toGeneric;
          this.#request(request);
        }
        out.num(msg['globalMinAccept']);
        return;
      }
      case kindNotPrimary:
        out.num(msg['epoch']);
        out.num(msg['view']);
        out.str(msg['clientId']);
        out.num(msg['requestNum']);
        out.num(msg['primary']);
        return;
      case kindBusy:
        out.num(msg['epoch']);
        out.num(msg['view']);
        out.str(msg['clientId']);
        out.num(msg['requestNum']);
        out.num(msg['retryAfterTicks']);
        return;
      default:
        throw new Error(`no layout for hot kind ${kind}`);
    }
  }

  /** A request's fields after its kind (on its own, or inside a prepare's entry). */
  #request(request: Fields): void {
    this.#out.str(request['clientId']);
    this.#out.num(request['requestNum']);
    this.#opaque(request, 'op');
  }

  /** A value of open shape: the next tail value. */
  #opaque(message: Fields, key: string): void {
    if (!Object.hasOwn(message, key)) throw toGeneric;
    this.#values.push(message[key]);
  }

  /** The id's interned index, defining it first if new and there is room; -1 when it goes inline. */
  #intern(id: string): number {
    const known = this.#ids.get(id);
    if (known !== undefined) return known;
    if (this.#ids.size >= this.#idsMax) return -1;
    // An id that cannot be utf8 (a lone surrogate) throws here: its envelope goes generic.
    this.#out.u8(kindDefineId);
    this.#out.str(id);
    const index = this.#ids.size;
    this.#ids.set(id, index);
    this.#pending.push(id);
    return index;
  }

  #ref(index: number, id: string): void {
    if (index >= 0) {
      this.#out.u16(index);
      return;
    }
    this.#out.u16(inlineId);
    this.#out.str(id);
  }
}

/** Reads the records of one link direction, keeping the writer's interned ids. */
export class RecordDecoder {
  readonly #idsMax: number;
  readonly #unpackr = new Unpackr(msgpackOptions);
  readonly #ids: string[] = [];

  constructor(idsMax = internedIdsMax) {
    if (!Number.isSafeInteger(idsMax) || idsMax < 0 || idsMax >= inlineId) throw new RangeError(`idsMax must be an integer between 0 and ${inlineId - 1}`);
    this.#idsMax = idsMax;
  }

  /** Ids this reader knows. */
  get internedIds(): number {
    return this.#ids.length;
  }

  /** The record's envelopes, in order; null when it is malformed (nothing of it is kept). */
  decode(record: Uint8Array): Envelope[] | null {
    const known = this.#ids.length;
    try {
      return this.#decode(record);
    } catch {
      this.#ids.length = known;
      return null;
    }
  }

  #decode(record: Uint8Array): Envelope[] {
    const header = new Input(record, 0, record.byteLength);
    const count = header.u32();
    const tailStart = header.u32();
    if (tailStart < recordHeaderBytes || tailStart > record.byteLength) throw malformed;
    let values: readonly unknown[] = [];
    if (tailStart < record.byteLength) {
      const tail: unknown = this.#unpackr.unpack(record.subarray(tailStart));
      if (!Array.isArray(tail) || tail.length === 0) throw malformed;
      values = tail;
    }
    const input = new Input(record, recordHeaderBytes, tailStart);
    const envelopes: Envelope[] = [];
    let next = 0;
    const value = (): unknown => {
      if (next >= values.length) throw malformed;
      const taken = values[next];
      next += 1;
      return taken;
    };
    while (input.pos < tailStart) {
      const byte = input.u8();
      if (byte === kindDefineId) {
        if (this.#ids.length >= this.#idsMax) throw malformed;
        this.#ids.push(input.str());
        continue;
      }
      if (byte === kindGeneric) {
        const envelope = value();
        if (!isEnvelope(envelope)) throw malformed;
        envelopes.push(envelope);
        continue;
      }
      input.wide = (byte & wideNumbers) !== 0;
      const kind = byte & ~wideNumbers;
      if (kind === kindTick && input.wide) throw malformed;
      const from = this.#ref(input);
      const to = this.#ref(input);
      envelopes.push({ from, to, msg: this.#message(kind, input, value) });
    }
    if (envelopes.length !== count || next !== values.length) throw malformed;
    return envelopes;
  }

  #ref(input: Input): string {
    const index = input.u16();
    if (index === inlineId) return input.str();
    const id = this.#ids[index];
    if (id === undefined) throw malformed;
    return id;
  }

  /** The message of a hot entry, its fields in the order the core builds them. */
  #message(kind: number, input: Input, value: () => unknown): unknown {
    switch (kind) {
      case kindTick:
        return { type: 'tick' };
      case kindPrepareOk:
        return { type: 'prepare_ok', epoch: input.num(), view: input.num(), replica: input.num(), op: input.num() };
      case kindCommit:
        return { type: 'commit', epoch: input.num(), view: input.num(), replica: input.num(), commit: input.num(), globalMinAccept: input.num() };
      case kindReadRound:
        return { type: 'read_round', epoch: input.num(), view: input.num(), replica: input.num(), round: input.num() };
      case kindReadRoundOk:
        return { type: 'read_round_ok', epoch: input.num(), view: input.num(), replica: input.num(), round: input.num() };
      case kindRequest:
        return request(input, value);
      case kindReply:
        return { type: 'reply', epoch: input.num(), view: input.num(), op: input.num(), clientId: input.str(), requestNum: input.num(), body: value() };
      case kindPrepare: {
        const epoch = input.num();
        const view = input.num();
        const replica = input.num();
        const op = input.num();
        const commit = input.num();
        const entryOp = input.num();
        const entryView = input.num();
        const count = input.u32();
        // Each request takes at least 8 bytes: a count beyond what is left is malformed, not an allocation.
        if (count > (input.end - input.pos) / 8) throw malformed;
        const requests: unknown[] = [];
        for (let i = 0; i < count; i += 1) requests.push(request(input, value));
        return { type: 'prepare', epoch, view, replica, op, commit, entry: { op: entryOp, view: entryView, requests }, globalMinAccept: input.num() };
      }
      case kindNotPrimary:
        return { type: 'not_primary', epoch: input.num(), view: input.num(), clientId: input.str(), requestNum: input.num(), primary: input.num() };
      case kindBusy:
        return { type: 'busy', epoch: input.num(), view: input.num(), clientId: input.str(), requestNum: input.num(), retryAfterTicks: input.num() };
      default:
        throw malformed;
    }
  }
}

function request(input: Input, value: () => unknown): unknown {
  return { type: 'request', clientId: input.str(), requestNum: input.num(), op: value() };
}
