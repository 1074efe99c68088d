#!/usr/bin/env node
// The `haret` command. Its subcommands (start, cli, admin) arrive with the runtime and network
// work; until then it answers --version and --help, and refuses anything else with exit code 2.
import { readFileSync } from 'node:fs';

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'));
const [command] = process.argv.slice(2);
const help = `haret ${pkg.version}: a strongly consistent coordination service

usage: haret --version | --help

Subcommands start, cli and admin are not built yet (see README.md, "What does not work yet").`;

if (command === '--version' || command === '-v') {
  console.log(pkg.version);
} else if (command === undefined || command === '--help' || command === '-h') {
  console.log(help);
} else {
  console.error(`haret: unknown or not yet available command: ${command}\n\n${help}`);
  process.exitCode = 2;
}
