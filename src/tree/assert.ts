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
  throw new InvariantViolation(`unhandled ${what}: ${JSON.stringify(value)}`);
}
