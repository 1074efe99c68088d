/**
 * The `haret` command's argument parsing: node:util's parseArgs for the splitting (long and
 * short options, `--name=value`, `--`), and our own checks of its tokens, so that every usage
 * error is one short sentence naming the offending word, and the caller adds the hint
 * ("Try 'haret cli --help'."). Every subcommand gets `--help` / `-h`.
 *
 * (commander would do this too, but it is not a runtime dependency of the package, and the
 * installed `haret` command must run on the package's own dependencies.)
 */

import { parseArgs } from 'node:util';
import { nearest } from './suggest.ts';

/** A usage error of `command` (e.g. "haret cli"): exit status 2, the message and a hint. */
export class UsageError extends Error {
  override readonly name = 'UsageError';
  readonly command: string;
  /** The second line; default: Try 'COMMAND --help'. */
  readonly hint: string;

  constructor(command: string, message: string, hint?: string) {
    super(message);
    this.command = command;
    this.hint = hint ?? `Try '${command} --help'.`;
  }
}

export type OptionSpec = { readonly type: 'string' | 'boolean'; readonly short?: string; readonly multiple?: boolean };

type ValueOf<O extends OptionSpec> = O['type'] extends 'boolean' ? boolean : O['multiple'] extends true ? string[] : string;

export type ParsedCommandLine<S extends Readonly<Record<string, OptionSpec>>> = {
  readonly values: { readonly [K in keyof S]?: ValueOf<S[K]> };
  readonly positionals: string[];
  /** `--help` or `-h` was given: print the help and exit 0, whatever else is there. */
  readonly help: boolean;
};

/** Splits `args` by `spec`; throws UsageError for an unknown option, a missing or extra value, or an option given twice. */
export function parseCommandLine<const S extends Readonly<Record<string, OptionSpec>>>(command: string, args: readonly string[], spec: S): ParsedCommandLine<S> {
  const options = { ...spec, help: { type: 'boolean', short: 'h' } } as Record<string, OptionSpec>;
  const { values, positionals, tokens } = parseArgs({
    args: [...args],
    options: Object.fromEntries(Object.entries(options).map(([name, option]) => [name, { type: option.type, ...(option.short === undefined ? {} : { short: option.short }), ...(option.multiple === true ? { multiple: true } : {}) }])),
    strict: false,
    allowPositionals: true,
    tokens: true,
  });
  if (values['help'] === true) return { values: {}, positionals, help: true };
  const seen = new Set<string>();
  for (const token of tokens) {
    if (token.kind !== 'option') continue;
    const option = Object.hasOwn(options, token.name) ? options[token.name] : undefined;
    if (option === undefined) {
      const longNames = Object.keys(options).map((name) => `--${name}`);
      const suggestion = token.rawName.startsWith('--') ? nearest(token.rawName, longNames) : null;
      throw new UsageError(command, `unknown option ${token.rawName}${suggestion === null ? '' : ` (did you mean ${suggestion}?)`}`);
    }
    if (option.type === 'string' && token.value === undefined) throw new UsageError(command, `option ${token.rawName} needs a value`);
    if (option.type === 'boolean' && token.inlineValue === true) throw new UsageError(command, `option ${token.rawName} takes no value`);
    if (option.multiple !== true && seen.has(token.name)) throw new UsageError(command, `option ${token.rawName} given more than once`);
    seen.add(token.name);
  }
  return { values: values as ParsedCommandLine<S>['values'], positionals, help: false };
}
