/**
 * The `haret` command (bin/haret.js loads it):
 *
 *   haret start [options]                    a node serving the TCP client API (start_command.ts)
 *   haret cli ADDRESS [-n NS] [-e CMD]...    the prompt against a node, or commands (cli_command.ts)
 *   haret admin ADDRESS [-e CMD]...          the admin API of a node (admin_command.ts)
 *   haret help [COMMAND] | --help | --version
 *
 * Every subcommand has its own --help. Exit codes: 0 success, 1 a failure (a command's error
 * result, a lost node), 2 bad usage: one line saying what is wrong, one saying where to look.
 */

import { existsSync, readFileSync } from 'node:fs';
import { UsageError } from './args.ts';
import { formatError } from './format.ts';
import { ConfigError } from './node_config.ts';
import { nearest } from './suggest.ts';

/** package.json: two levels up from the sources (src/cli), three from the compiled output (dist/src/cli). */
function readPackage(): { version: string } {
  for (const relative of ['../../package.json', '../../../package.json']) {
    const url = new URL(relative, import.meta.url);
    if (existsSync(url)) return JSON.parse(readFileSync(url, 'utf8')) as { version: string };
  }
  return { version: 'unknown' };
}

const pkg = readPackage();

type Loaded = { readonly run: (args: readonly string[]) => Promise<number>; readonly usage: string };

/**
 * Each subcommand is loaded when it runs: `haret cli` and `haret admin` (what scripts call
 * often) never load the node, and `--version` loads nothing.
 */
const subcommands: Readonly<Record<'start' | 'cli' | 'admin', { readonly load: () => Promise<Loaded>; readonly summary: string }>> = {
  start: {
    load: async () => {
      const { start, startUsage } = await import('./start_command.ts');
      return { run: start, usage: startUsage };
    },
    summary: 'a node serving the client API (and admin, cluster, HTTP)',
  },
  cli: {
    load: async () => {
      const { cli, cliUsage } = await import('./cli_command.ts');
      return { run: cli, usage: cliUsage };
    },
    summary: 'the prompt against a node, or commands from -e or a pipe',
  },
  admin: {
    load: async () => {
      const { admin, adminUsage } = await import('./admin_command.ts');
      return { run: admin, usage: adminUsage };
    },
    summary: 'the admin API of a node: status, health, cluster, backups',
  },
};

type Subcommand = keyof typeof subcommands;

const isSubcommand = (word: string): word is Subcommand => Object.hasOwn(subcommands, word);

const usage = `haret ${pkg.version}: a strongly consistent coordination service

usage: haret COMMAND [options]

commands:
${Object.entries(subcommands)
  .map(([name, { summary }]) => `  ${name.padEnd(7)} ${summary}`)
  .join('\n')}

  haret COMMAND --help   the options of COMMAND
  haret --version        the version

Exit status: 0 success, 1 a failure (an error result, a lost node), 2 a usage error.`;

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case '--version':
      case '-v':
      case '-V':
        process.stdout.write(`${pkg.version}\n`);
        return 0;
      case undefined:
      case '--help':
      case '-h':
        process.stdout.write(`${usage}\n`);
        return 0;
      case 'help': {
        const [topic, ...extra] = rest;
        if (topic === undefined) {
          process.stdout.write(`${usage}\n`);
          return 0;
        }
        if (!isSubcommand(topic) || extra.length > 0) throw new UsageError('haret', `no help on ${[topic, ...extra].join(' ')}: the commands are ${Object.keys(subcommands).join(', ')}`);
        process.stdout.write(`${(await subcommands[topic].load()).usage}\n`);
        return 0;
      }
      default: {
        if (isSubcommand(command)) return await (await subcommands[command].load()).run(rest);
        if (command.startsWith('-')) throw new UsageError('haret', `unknown option ${command}`);
        const suggestion = nearest(command, Object.keys(subcommands));
        throw new UsageError('haret', `unknown or not yet available command: ${command}${suggestion === null ? '' : ` (did you mean ${suggestion}?)`}`);
      }
    }
  } catch (error) {
    if (error instanceof UsageError) {
      process.stderr.write(`${error.command}: ${error.message}\n${error.hint}\n`);
      return 2;
    }
    if (error instanceof ConfigError) {
      process.stderr.write(`haret ${command}: ${error.message}\nTry 'haret ${command} --help'.\n`);
      return 2;
    }
    process.stderr.write(`haret ${command}: ${formatError(error)}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv.slice(2));
