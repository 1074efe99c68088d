/** Configuration of a client session; times in ticks. Validated once. */
export type ClientConfig = {
  readonly replicaCount: number;
  /** First retry after this many ticks without an answer; doubles per attempt. */
  readonly retryTicks: number;
  /** Cap of the doubling backoff. */
  readonly retryTicksMax: number;
  /** Give up (typed `timeout`) after this many ticks since the call was first sent. */
  readonly giveUpTicks: number;
  /** Calls waiting behind the outstanding one; past this a call is answered `overloaded`. */
  readonly queueMax: number;
};

export const defaultClientConfig: ClientConfig = {
  replicaCount: 3,
  retryTicks: 10,
  retryTicksMax: 80,
  giveUpTicks: 1000,
  queueMax: 1024,
};

/** Milliseconds per client tick in the node's proxy and the client library. */
export const serviceClientTickMs = 50;

/**
 * Session defaults of the node's proxy and the client library, in client ticks of
 * `serviceClientTickMs` (50 ms): first retry after 200 ms, doubling to 1 s, give up after
 * 15 s (a view change takes 300-600 ms of silence to start). `defaultClientConfig` is the
 * pure core's (the simulator's) in protocol ticks.
 */
export const serviceClientConfig: Omit<ClientConfig, 'replicaCount'> = { retryTicks: 4, retryTicksMax: 20, giveUpTicks: 300, queueMax: 1024 };

export function validateClientConfig(config: ClientConfig): string | null {
  for (const [key, value] of Object.entries(config)) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1) return `client config.${key} must be a positive integer`;
  }
  if (config.retryTicksMax < config.retryTicks) return 'client config.retryTicksMax must be at least retryTicks';
  return null;
}
