/** Options `haret cli` and `haret admin` share: the output form and the credentials they present. */

import { UsageError } from './args.ts';
import { readPemFile, readTokenFile } from './node_config.ts';
import { isOutputMode, outputModes, type OutputMode } from './output.ts';

export const outputOption = { output: { type: 'string', short: 'o' } } as const;

/** A token, and the CA the node's TLS certificate is signed by. */
export const credentialOptions = { 'token-file': { type: 'string' }, 'tls-ca': { type: 'string' } } as const;

export function outputModeOf(command: string, text: string | undefined): OutputMode {
  if (text === undefined) return 'human';
  if (!isOutputMode(text)) throw new UsageError(command, `-o ${text}: the output form is one of ${outputModes.join(', ')}`);
  return text;
}

export function credentialsOf(values: { readonly 'token-file'?: string | undefined; readonly 'tls-ca'?: string | undefined }): { token?: string; tls?: { ca: string } } {
  return {
    ...(values['token-file'] === undefined ? {} : { token: readTokenFile(values['token-file'], '--token-file') }),
    ...(values['tls-ca'] === undefined ? {} : { tls: { ca: readPemFile(values['tls-ca'], '--tls-ca') } }),
  };
}
