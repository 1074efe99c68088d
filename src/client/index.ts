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
export { NamespaceClient, settle, type CallPath, type Committed, type LogPosition, type Value } from './namespace_client.ts';
export { HaretError, type HaretErrorCode, type ServiceErrorCode } from './errors.ts';
