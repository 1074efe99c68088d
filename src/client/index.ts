/** Public surface of the pure client-session logic. */
export * from './config.ts';
export type * from './io.ts';
export { initialClientState, clientStep, isIdle, type ClientState, type ClientStepResult } from './session.ts';
export {
  initialPoolState,
  poolStepAll,
  poolStats,
  validatePoolConfig,
  checkPoolInvariants,
  poolLimits,
  type PoolConfig,
  type PoolConfigProblem,
  type PoolInput,
  type PoolEffect,
  type PoolState,
  type PoolStats,
  type WaitingCall,
} from './pool.ts';
export { initialHostState, hostStepAll, hostStats, hostServes, validateHostConfig, type HostConfig, type HostInput, type HostEffect, type HostState, type HostStepResult } from './host.ts';
export { sessionPrefix, sessionPrefixRandomBytes } from './session_prefix.ts';
export { NamespaceClient, settle, type CallPath, type Committed, type LogPosition, type Value, type WatchOptions, type WatchPath } from './namespace_client.ts';
export { HaretError, type HaretErrorCode, type ServiceErrorCode, type WatchErrorDetails } from './errors.ts';
export {
  defaultWatchMachineConfig,
  initialWatchMachine,
  watchStep,
  watchPosition,
  watchEnded,
  watchAttemptId,
  type WatchSpec,
  type WatchMachineConfig,
  type WatchBatch,
  type WatchErrorCode,
  type WatchError,
  type WatchInput,
  type WatchOutput,
  type WatchMachine,
} from './watch.ts';
export { WatchRegistry, defaultWatchRegistryLimits, toHaretError, type WatchSender, type WatchRegistryLimits, type WatchRegistryStats } from './watch_registry.ts';
export { WatchStream, type WatchSink } from './watch_stream.ts';
