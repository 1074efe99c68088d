/**
 * Assertions for our own bugs. They throw, which crashes the actor that hit them; the
 * supervisor restarts it through VR recovery. Faults from the world never reach these.
 */
export class InvariantViolation extends Error {
  override readonly name = 'InvariantViolation';
}

export function assert(condition: boolean, message: string): asserts condition {
  if (!condition) throw new InvariantViolation(message);
}

export function assertNever(value: never, what = 'value'): never {
  throw new InvariantViolation(`unhandled ${what}: ${describe(value)}`);
}

/** JSON.stringify throws on BigInt and cycles; an assertion must report, not throw something else. */
function describe(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return Object.prototype.toString.call(value);
  }
}
