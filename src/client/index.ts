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
  type PoolStepResult,
  type WaitingCall,
} from './pool.ts';
