/**
 * The dependency rule (DESIGN.md, "Folder layout"): shell -> actors -> runtime; shell and
 * actors -> core; the runtime imports nothing of the core; the core nothing else of ours.
 * dependency-cruiser walks the real import graph (every import, export-from, dynamic import
 * and type-only import, resolved to files) and checks it against .dependency-cruiser.cjs,
 * which states each rule and why. The same config runs over a small fixture with one
 * violation of every rule, so the test cannot pass because the config matches nothing.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import type { ICruiseResult, IViolation } from 'dependency-cruiser';

const root = fileURLToPath(new URL('../..', import.meta.url));
const config = join(root, '.dependency-cruiser.cjs');
const fixture = join(root, 'test/unit/fixtures/dependency_rule');
/** The folders the rule speaks of; tests and benchmarks may import anything. */
const folders = ['src', 'actors', 'runtime', 'bin'];

/**
 * Runs dependency-cruiser's JS API (`extractDepcruiseOptions`, then `cruise`) in a plain Node
 * child process. Not in this process: mocha runs under tsx, whose loader hands an `import()` of
 * a CommonJS module with `__esModule` its `exports.default` instead of the exports object, and
 * dependency-cruiser loads swc's visitor (`@swc/core/Visitor.js`) exactly that way, so under
 * tsx its TypeScript extraction breaks ("visitor.getDependencies is not a function").
 */
const cruiseScript = `
import { cruise } from 'dependency-cruiser';
import extractDepcruiseOptions from 'dependency-cruiser/config-utl/extract-depcruise-options';
const [config, baseDir, ...folders] = process.argv.slice(1);
const options = await extractDepcruiseOptions(config);
const { output } = await cruise(folders, { ...options, baseDir });
if (typeof output === 'string') throw new Error('dependency-cruiser answered text, not a result');
process.stdout.write(JSON.stringify({ rules: options.ruleSet.forbidden.map((rule) => rule.name), result: output }));
`;

async function cruiseFrom(baseDir: string): Promise<{ rules: string[]; result: ICruiseResult }> {
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--input-type=module', '--eval', cruiseScript, config, baseDir, ...folders],
    { cwd: root, env, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, timeout: 50_000 },
  );
  return JSON.parse(stdout) as { rules: string[]; result: ICruiseResult };
}

/** One line per violation: rule, from -> to, and the path that leads there (a cycle or a transitive chain). */
function violationLine(violation: IViolation): string {
  const chain = violation.cycle ?? violation.via ?? [];
  const through = chain.length > 0 ? ` (via ${chain.map((step) => step.name).join(' -> ')})` : '';
  return `${violation.rule.name}: ${violation.from} -> ${violation.to}${through}`;
}

/** Every source file under the given folders, as repository-relative paths. */
function sourceFiles(baseDir: string): string[] {
  return folders.flatMap((folder) =>
    readdirSync(join(baseDir, folder), { recursive: true, encoding: 'utf8' })
      .filter((name) => /\.(ts|js|mjs|cjs)$/.test(name) && !name.endsWith('.d.ts'))
      .map((name) => `${folder}/${name.split('\\').join('/')}`),
  );
}

describe('dependency rule', () => {
  it('the import graph of src, actors, runtime and bin breaks no rule', async function () {
    this.timeout(60_000);
    const { result } = await cruiseFrom(root);
    // Every source file was cruised and every import resolved, so no edge escaped the rules.
    const cruised = new Set(result.modules.map((module) => module.source));
    const missed = sourceFiles(root).filter((file) => !cruised.has(file));
    expect(missed, 'files the cruise did not reach').to.deep.equal([]);
    const violations = result.summary.violations.map(violationLine);
    expect(violations, `dependency rule violations:\n  ${violations.join('\n  ')}\n`).to.deep.equal([]);
  });

  it('bites: the same config reports every planted violation in the fixture, and nothing allowed', async function () {
    this.timeout(60_000);
    const { rules, result } = await cruiseFrom(fixture);
    const reported = result.summary.violations.map((violation) => `${violation.rule.name}: ${violation.from} -> ${violation.to}`).sort();
    expect(reported).to.deep.equal(
      [
        'actors-import-runtime-and-core: actors/bad_actor.ts -> src/net/server.ts',
        'base-imports-only-base: src/base/bad_base.ts -> src/tree/tree.ts',
        'bin-imports-cli-only: bin/bad_bin.js -> src/node/node.ts',
        'client-library-loads-no-node: src/net/connect.ts -> actors/replica.ts',
        'client-library-loads-no-node: src/net/connect.ts -> runtime/mailbox.ts',
        // A type-only import counts like any other.
        'core-imports-only-core: src/client/typed.ts -> runtime/mailbox.ts',
        'core-imports-only-core: src/tree/typo.mjs -> ./missing.mjs',
        'core-imports-only-core: src/vr/bad_core.ts -> runtime/mailbox.ts',
        'net-not-node-or-cli: src/net/bad_net.ts -> src/node/node.ts',
        'no-cycle-across-folders: src/net/bad_net.ts -> src/node/node.ts',
        'node-not-cli: src/node/node.ts -> src/cli/haret.ts',
        'not-to-unresolvable: src/tree/typo.mjs -> ./missing.mjs',
        'runtime-imports-only-runtime: runtime/bad_runtime.ts -> src/base/limits.ts',
        'shell-imports-the-product-only: src/cli/bad_cli.ts -> bench/tool.ts',
      ].sort(),
    );
    // Every rule of the config is exercised by the fixture.
    expect(rules).to.have.length.above(0);
    expect([...new Set(result.summary.violations.map((violation) => violation.rule.name))].sort()).to.deep.equal([...rules].sort());
  });
});
