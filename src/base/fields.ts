/**
 * The reader kit for untrusted input: a client's operation, a wire message, a peer's message,
 * a cluster frame, an admin request, a file read back from disk. Every reader checks shape
 * before anything becomes state, names the offending field in its message, and fails through
 * the caller's own `fail` (each boundary throws its own typed rejection: `invalid_request`
 * for a tree op, `malformed` for a wire frame, a trace reason for a peer).
 *
 * Rules every reader follows, so no boundary has to remember them:
 * - plain objects only (what msgpack and structured clone produce, `Object.create(null)` too);
 *   class instances, Maps, Dates, typed arrays and arrays are not records;
 * - own properties only: an inherited (for example polluted) property is not a field;
 * - numbers are bounded before use (safe integers, explicit ranges);
 * - byte strings are brand-checked with the intrinsic %TypedArray% getters, which neither a
 *   forged prototype, a Proxy nor a subclass overriding `byteLength` can fake.
 */

export type Fields = Readonly<Record<string, unknown>>;

/** Throws the boundary's own rejection; never returns. */
export type Fail = (message: string) => never;

/** What a boundary calls the two kinds whose names differ by encoding. */
export type FieldWords = {
  /** How a record is named in messages: `a map` on msgpack wires, `an object` elsewhere. */
  readonly record: string;
  /** How a byte string is named: `bytes (msgpack bin)` on wires, `a Uint8Array` elsewhere. */
  readonly bytes: string;
};

export const objectWords: FieldWords = { record: 'an object', bytes: 'a Uint8Array' };
export const msgpackWords: FieldWords = { record: 'a map', bytes: 'bytes (msgpack bin)' };

export function isPlainObject(value: unknown): value is Fields {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/** Own fields only; a map key `__proto__` arrives renamed by msgpackr and is simply unknown. */
export function own(fields: Fields, key: string): unknown {
  return Object.hasOwn(fields, key) ? fields[key] : undefined;
}

/** Joins a field name to the label of its container; top-level fields are bare names. */
export function at(label: string, key: string): string {
  return label === '' ? key : `${label}.${key}`;
}

/** A non-negative safe integer (op numbers, views, counts, ids). */
export function isCounter(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

/** A safe integer in [min, max]. */
function isIntegerIn(value: unknown, min: number, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= min && value <= max;
}

/**
 * The intrinsic %TypedArray% getters, captured once. Calling them directly is a brand check
 * that prototypes cannot fake: `Object.create(Uint8Array.prototype)` or a Proxy around a
 * Uint8Array is not one, and a subclass overriding `byteLength` cannot lie about its size.
 */
const typedArrayPrototype: object = Object.getPrototypeOf(Uint8Array.prototype) as object;
const typedArrayTagGetter = intrinsicGetter(Symbol.toStringTag);
const typedArrayByteLengthGetter = intrinsicGetter('byteLength');

function intrinsicGetter(key: PropertyKey): (this: unknown) => unknown {
  const getter = Object.getOwnPropertyDescriptor(typedArrayPrototype, key)?.get;
  if (getter === undefined) throw new Error(`%TypedArray%.prototype has no ${String(key)} getter`);
  return getter;
}

/** A Uint8Array or a subclass (a Node Buffer is one); other typed arrays and views are not. */
export function isUint8Array(value: unknown): value is Uint8Array {
  return typedArrayTagGetter.call(value) === 'Uint8Array';
}

/** The true byte length of a value `isUint8Array` accepted. */
export function byteLengthOf(value: Uint8Array): number {
  return typedArrayByteLengthGetter.call(value) as number;
}

/**
 * Readers bound to one boundary's `fail` and wording. `xValue(value, label)` reads a value
 * already in hand (an array element); `x(fields, key, label)` reads a required field of a
 * record, where absent means "missing field", anything else of the wrong kind is named.
 *
 * `x(fields, key, label)` names the field (`label.key`) only when it refuses it: it checks the
 * value first and hands it to `xValue` with the name only on the way to a refusal (whose checks
 * touch nothing a Proxy could see). Every field of an item in a list would otherwise cost a
 * string, and validators run for every request.
 */
export class FieldReader {
  readonly fail: Fail;
  readonly words: FieldWords;

  constructor(fail: Fail, words: FieldWords = objectWords) {
    this.fail = fail;
    this.words = words;
  }

  record(value: unknown, label: string): Fields {
    if (!isPlainObject(value)) return this.#notRecord(label);
    return value;
  }

  /** Not `record(value, label)` again on a refusal: `isPlainObject` runs a Proxy's getPrototypeOf trap. */
  #notRecord(label: string): never {
    return this.fail(`${label} must be ${this.words.record}`);
  }

  required(fields: Fields, key: string, label: string): unknown {
    const value = own(fields, key);
    if (value === undefined) return this.fail(`missing field ${at(label, key)}`);
    return value;
  }

  /** Absent stays undefined; a present field is checked by the caller. */
  optional(fields: Fields, key: string): unknown {
    return own(fields, key);
  }

  recordField(fields: Fields, key: string, label: string): Fields {
    const value = this.required(fields, key, label);
    return isPlainObject(value) ? value : this.#notRecord(at(label, key));
  }

  /** Non-negative safe integer; -0 folds to 0 so a re-encoded value is canonical. */
  counterValue(value: unknown, label: string): number {
    if (!isCounter(value)) return this.fail(`${label} must be a non-negative integer below 2^53`);
    return value + 0;
  }

  counter(fields: Fields, key: string, label: string): number {
    const value = this.required(fields, key, label);
    return isCounter(value) ? value + 0 : this.counterValue(value, at(label, key));
  }

  /** An integer in [min, max] (both safe integers). */
  integerValue(value: unknown, label: string, min: number, max: number): number {
    if (!isIntegerIn(value, min, max)) return this.fail(`${label} must be an integer in ${min}..${max}`);
    return value + 0;
  }

  integer(fields: Fields, key: string, label: string, min: number, max: number): number {
    const value = this.required(fields, key, label);
    return isIntegerIn(value, min, max) ? value + 0 : this.integerValue(value, at(label, key), min, max);
  }

  /** A string of `lengthMin..lengthMax` UTF-16 units (checked before any further parsing). */
  stringValue(value: unknown, label: string, lengthMin = 0, lengthMax = Number.MAX_SAFE_INTEGER): string {
    if (typeof value !== 'string') return this.fail(`${label} must be a string`);
    if (value.length < lengthMin || value.length > lengthMax) return this.fail(`${label} must be ${lengthMin}..${lengthMax} characters`);
    return value;
  }

  string(fields: Fields, key: string, label: string, lengthMin = 0, lengthMax = Number.MAX_SAFE_INTEGER): string {
    const value = this.required(fields, key, label);
    if (typeof value === 'string' && value.length >= lengthMin && value.length <= lengthMax) return value;
    return this.stringValue(value, at(label, key), lengthMin, lengthMax);
  }

  booleanValue(value: unknown, label: string): boolean {
    if (typeof value !== 'boolean') return this.fail(`${label} must be a boolean`);
    return value;
  }

  boolean(fields: Fields, key: string, label: string): boolean {
    const value = this.required(fields, key, label);
    return typeof value === 'boolean' ? value : this.booleanValue(value, at(label, key));
  }

  /** An array of at most `lengthMax` elements (checked before any element is read). */
  arrayValue(value: unknown, label: string, lengthMax = Number.MAX_SAFE_INTEGER): readonly unknown[] {
    if (!Array.isArray(value)) return this.fail(`${label} must be an array`);
    if (value.length > lengthMax) return this.#tooLong(label, lengthMax);
    return value;
  }

  array(fields: Fields, key: string, label: string, lengthMax = Number.MAX_SAFE_INTEGER): readonly unknown[] {
    const value = this.required(fields, key, label);
    if (!Array.isArray(value)) return this.arrayValue(value, at(label, key), lengthMax);
    // `length` is read once: on a Proxy around an array it runs the get trap.
    if (value.length > lengthMax) return this.#tooLong(at(label, key), lengthMax);
    return value;
  }

  #tooLong(label: string, lengthMax: number): never {
    return this.fail(`${label} must have at most ${lengthMax} elements`);
  }

  /** A byte string of at most `bytesMax` bytes, kept by reference. */
  bytesValue(value: unknown, label: string, bytesMax = Number.MAX_SAFE_INTEGER): Uint8Array {
    if (!isUint8Array(value)) return this.fail(`${label} must be ${this.words.bytes}`);
    if (byteLengthOf(value) > bytesMax) return this.fail(`${label} must be at most ${bytesMax} bytes`);
    return value;
  }

  bytes(fields: Fields, key: string, label: string, bytesMax = Number.MAX_SAFE_INTEGER): Uint8Array {
    const value = this.required(fields, key, label);
    if (isUint8Array(value) && byteLengthOf(value) <= bytesMax) return value;
    return this.bytesValue(value, at(label, key), bytesMax);
  }

  /** One of a closed set of strings; the offending value is shown, cut to 64 characters. */
  oneOfValue<T extends string>(value: unknown, label: string, allowed: readonly T[]): T {
    if (typeof value !== 'string' || !(allowed as readonly string[]).includes(value)) {
      const shown = typeof value === 'string' ? JSON.stringify(value.slice(0, 64)) : typeof value;
      return this.fail(`${label} ${shown} is not one of ${allowed.join(', ')}`);
    }
    return value as T;
  }

  oneOf<T extends string>(fields: Fields, key: string, label: string, allowed: readonly T[]): T {
    const value = this.required(fields, key, label);
    if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
    return this.oneOfValue(value, at(label, key), allowed);
  }
}
