/**
 * Strict text for the wire codec. msgpack decoders do not refuse a `str` that is not UTF-8:
 * msgpackr's native reader substitutes U+FFFD, its JavaScript reader turns each stray byte
 * into a code point of its own. Either way two different byte strings can decode to one name
 * (`/v/\xff` and `/v/\xfe`, or a path and its mangled twin), so the protocol refuses them
 * (docs/protocol.md section 4). This walks the raw msgpack value that msgpackr has already
 * parsed and checks every `str` (map keys included) with a fatal UTF-8 decoder.
 *
 * Pure and bounded: one pass over the payload, no allocation for ASCII text (the usual case),
 * every length checked against the bytes that remain.
 */

const utf8 = new TextDecoder('utf-8', { fatal: true });

/** A description of the first `str` that is not valid UTF-8, or null when all are. */
export function invalidText(payload: Uint8Array): string | null {
  const view = new DataView(payload.buffer, payload.byteOffset, payload.byteLength);
  const end = payload.byteLength;
  let at = 0;
  // Values still to read: 1 for the top-level value, plus the items of open containers.
  let pending = 1;
  while (pending > 0) {
    if (at >= end) return null; // msgpackr already refused truncated input; nothing more to check
    pending -= 1;
    const byte = payload[at] as number;
    at += 1;
    let strLength = -1;
    if (byte <= 0x7f || byte >= 0xe0 || byte === 0xc0 || byte === 0xc2 || byte === 0xc3) continue;
    if (byte <= 0x8f) {
      pending += 2 * (byte & 0x0f);
      continue;
    }
    if (byte <= 0x9f) {
      pending += byte & 0x0f;
      continue;
    }
    if (byte <= 0xbf) {
      strLength = byte & 0x1f;
    } else {
      const need = headerBytes(byte);
      if (need < 0 || at + need > end) return null;
      switch (byte) {
        case 0xc4: // bin 8/16/32: skip the bytes
          at += 1 + view.getUint8(at);
          continue;
        case 0xc5:
          at += 2 + view.getUint16(at);
          continue;
        case 0xc6:
          at += 4 + view.getUint32(at);
          continue;
        case 0xc7: // ext 8/16/32: length, type, data
          at += 2 + view.getUint8(at);
          continue;
        case 0xc8:
          at += 3 + view.getUint16(at);
          continue;
        case 0xc9:
          at += 5 + view.getUint32(at);
          continue;
        case 0xd9:
          strLength = view.getUint8(at);
          at += 1;
          break;
        case 0xda:
          strLength = view.getUint16(at);
          at += 2;
          break;
        case 0xdb:
          strLength = view.getUint32(at);
          at += 4;
          break;
        case 0xdc:
          pending += view.getUint16(at);
          at += 2;
          continue;
        case 0xdd:
          pending += view.getUint32(at);
          at += 4;
          continue;
        case 0xde:
          pending += 2 * view.getUint16(at);
          at += 2;
          continue;
        case 0xdf:
          pending += 2 * view.getUint32(at);
          at += 4;
          continue;
        default:
          // Numbers and fixext: a fixed size, no text inside.
          at += need;
          continue;
      }
    }
    if (at + strLength > end) return null;
    if (!isUtf8(payload, at, strLength)) return `a string at byte ${at} is not valid UTF-8`;
    at += strLength;
  }
  return null;
}

/** Bytes after the type byte of a fixed-size or length-prefixed format; -1 for 0xc1 (never used). */
function headerBytes(byte: number): number {
  switch (byte) {
    case 0xc4:
    case 0xc7:
    case 0xd9:
    case 0xcc:
    case 0xd0:
      return 1;
    case 0xc5:
    case 0xc8:
    case 0xda:
    case 0xdc:
    case 0xde:
    case 0xcd:
    case 0xd1:
    case 0xd4:
      return 2;
    case 0xd5:
      return 3;
    case 0xc6:
    case 0xc9:
    case 0xdb:
    case 0xdd:
    case 0xdf:
    case 0xca:
    case 0xce:
    case 0xd2:
      return 4;
    case 0xd6:
      return 5;
    case 0xcb:
    case 0xcf:
    case 0xd3:
      return 8;
    case 0xd7:
      return 9;
    case 0xd8:
      return 17;
    default:
      return -1;
  }
}

function isUtf8(bytes: Uint8Array, start: number, length: number): boolean {
  const stop = start + length;
  let i = start;
  while (i < stop && (bytes[i] as number) < 0x80) i += 1;
  if (i === stop) return true;
  try {
    utf8.decode(bytes.subarray(start, stop));
    return true;
  } catch {
    return false;
  }
}
