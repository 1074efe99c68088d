/**
 * A place for an object that is made after the objects that call it. The main thread's actors
 * (`host/net`, `host/cluster`) must exist when the actor system starts, but the TCP server
 * and the cluster they hand envelopes to can only be made once that system runs (they send
 * through it). So `startNode` makes a slot first, gives the actor a sink that reads it, and
 * binds the slot, once, when the object exists. Until then `current` is null and each reader
 * says what it does meanwhile.
 */
export class Slot<T> {
  readonly #what: string;
  #value: T | null = null;

  constructor(what: string) {
    this.#what = what;
  }

  /** Binds the object; binding twice is a bug in the composition root. */
  bind(value: T): void {
    if (this.#value !== null) throw new Error(`${this.#what} is bound twice`);
    this.#value = value;
  }

  /** The object, or null before it is made. */
  get current(): T | null {
    return this.#value;
  }
}
