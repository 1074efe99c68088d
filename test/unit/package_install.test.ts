/**
 * The package as a user installs it: `npm pack` (whose `prepare` builds dist/) makes a tarball
 * with the compiled entry, its declarations and the command; the tarball installs into a fresh
 * project without the network; the README's embedding example, copied from README.md, runs
 * there on plain Node; `haret --version` answers; and a TypeScript file importing 'haret'
 * type-checks in strict mode with only @types/node beside it.
 *
 * Offline: `npm ci` fills the npm cache with the tarballs of the locked versions, but not
 * with the registry's package documents (it reads versions from package-lock.json), so a bare
 * `npm install --offline haret-0.1.0.tgz` in a fresh project fails (ENOTCACHED: it must look
 * up which comlink satisfies ^4.4.2). The fresh project therefore gets a package-lock.json cut
 * from ours: the entries of haret's dependencies and of @types/node, with their dependencies,
 * at the versions and integrity this repository is tested with. `npm ci --offline` then needs
 * only tarballs, all in the cache.
 */
import { expect } from 'chai';
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

const root = fileURLToPath(new URL('../..', import.meta.url));
const run = promisify(execFile);

interface LockEntry {
  readonly version?: string;
  readonly dependencies?: Record<string, string>;
  readonly optionalDependencies?: Record<string, string>;
  readonly peerDependencies?: Record<string, string>;
  readonly peerDependenciesMeta?: Record<string, { optional?: boolean }>;
  readonly [field: string]: unknown;
}
interface Lock {
  readonly lockfileVersion: number;
  readonly packages: Record<string, LockEntry>;
}
interface Manifest {
  readonly name: string;
  readonly version: string;
  readonly license: string;
  readonly bin: Record<string, string>;
  readonly engines: Record<string, string>;
  readonly dependencies: Record<string, string>;
}

/** A child's environment: no NODE_OPTIONS, so a consumer runs on plain Node, not under tsx. */
function childEnv(): NodeJS.ProcessEnv {
  const env = { ...process.env };
  delete env['NODE_OPTIONS'];
  return env;
}

/** Runs a command to completion (bounded), failing with its output when it fails. */
async function sh(command: string, args: readonly string[], cwd: string, timeoutMs: number): Promise<{ stdout: string; stderr: string }> {
  try {
    return await run(command, args, { cwd, env: childEnv(), encoding: 'utf8', timeout: timeoutMs, maxBuffer: 64 * 1024 * 1024 });
  } catch (error) {
    const failed = error as { message: string; stdout?: string; stderr?: string };
    throw new Error(`${command} ${args.join(' ')} failed in ${cwd}: ${failed.message}\n${failed.stdout ?? ''}\n${failed.stderr ?? ''}`);
  }
}

/** Where Node would find `name` required from the package at `from` (a lockfile location, '' for the root). */
function locate(lock: Lock, from: string, name: string): string | undefined {
  let at = from;
  for (;;) {
    const candidate = `${at === '' ? '' : `${at}/`}node_modules/${name}`;
    if (lock.packages[candidate] !== undefined) return candidate;
    if (at === '') return undefined;
    const nested = at.lastIndexOf('/node_modules/');
    at = nested < 0 ? '' : at.slice(0, nested);
  }
}

/**
 * The lockfile entries `names` need, with everything they depend on, at the locations our
 * lockfile has them (a valid tree: it is a subtree of ours). Development flags are dropped (in
 * the consumer they are plain dependencies); `optional` stays, so npm skips other platforms' builds.
 */
function lockClosure(lock: Lock, names: readonly string[]): Record<string, LockEntry> {
  const entries: Record<string, LockEntry> = {};
  const queue: Array<{ from: string; name: string; optional: boolean }> = names.map((name) => ({ from: '', name, optional: false }));
  for (let next = queue.pop(); next !== undefined; next = queue.pop()) {
    const location = locate(lock, next.from, next.name);
    if (location === undefined) {
      if (next.optional) continue;
      throw new Error(`package-lock.json has no ${next.name} for ${next.from || 'the root'}`);
    }
    if (entries[location] !== undefined) continue;
    const { dev: _dev, devOptional: _devOptional, peer: _peer, ...entry } = lock.packages[location] as LockEntry;
    entries[location] = entry;
    for (const name of Object.keys(entry.dependencies ?? {})) queue.push({ from: location, name, optional: false });
    for (const name of Object.keys(entry.optionalDependencies ?? {})) queue.push({ from: location, name, optional: true });
    // npm installs peers too; an optional peer or one we do not have stays out.
    for (const name of Object.keys(entry.peerDependencies ?? {})) queue.push({ from: location, name, optional: true });
  }
  return entries;
}

/** The README's embedding example: the first ```js block under "## Embedding haret", as written. */
function readmeExample(): string {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Embedding haret'));
  const match = /```js\n([\s\S]*?)```/.exec(section);
  if (match?.[1] === undefined) throw new Error('README.md has no ```js example under "## Embedding haret"');
  return match[1];
}

describe('package install (npm pack, then a fresh project installs the tarball offline)', function () {
  this.timeout(120_000);
  const manifest = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as Manifest;
  const lock = JSON.parse(readFileSync(join(root, 'package-lock.json'), 'utf8')) as Lock;
  let work = '';
  let consumer = '';
  let packedFiles: string[] = [];

  before(async function () {
    this.timeout(150_000);
    work = mkdtempSync(join(tmpdir(), 'haret-install-'));
    consumer = join(work, 'consumer');
    const { stdout } = await sh('npm', ['pack', '--json', '--pack-destination', work], root, 90_000);
    const [packed] = JSON.parse(stdout) as Array<{ filename: string; integrity: string; files: Array<{ path: string }> }>;
    if (packed === undefined) throw new Error(`npm pack reported no tarball: ${stdout}`);
    packedFiles = packed.files.map((file) => file.path);

    const tarball = `file:../${packed.filename}`;
    const typesNode = lock.packages['node_modules/@types/node']?.version;
    if (typesNode === undefined) throw new Error('package-lock.json has no @types/node');
    const dependencies = { haret: tarball };
    const devDependencies = { '@types/node': typesNode };
    const packages: Record<string, LockEntry> = {
      '': { name: 'consumer', dependencies, devDependencies },
      'node_modules/haret': {
        version: manifest.version,
        resolved: tarball,
        integrity: packed.integrity,
        license: manifest.license,
        dependencies: manifest.dependencies,
        bin: manifest.bin,
        engines: manifest.engines,
      },
      ...lockClosure(lock, [...Object.keys(manifest.dependencies), '@types/node']),
    };
    mkdirSync(consumer);
    writeFileSync(join(consumer, 'package.json'), `${JSON.stringify({ name: 'consumer', private: true, type: 'module', dependencies, devDependencies }, null, 2)}\n`);
    writeFileSync(join(consumer, 'package-lock.json'), `${JSON.stringify({ name: 'consumer', lockfileVersion: 3, requires: true, packages }, null, 2)}\n`);
    // --ignore-scripts: nothing haret needs builds at install time (msgpackr's native part
    // ships prebuilt, and msgpackr works without it), and a script could reach for the network.
    try {
      await sh('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts'], consumer, 60_000);
    } catch (error) {
      const hint = String(error).includes('ENOTCACHED') ? '\n(the npm cache lacks a locked tarball: run `npm ci` in the repository first)' : '';
      throw new Error(`${String(error)}${hint}`);
    }
  });

  after(() => {
    if (work !== '') rmSync(work, { recursive: true, force: true });
  });

  it('the tarball holds the built entry, its declarations and the command, and no sources', () => {
    expect(packedFiles).to.include.members(['dist/src/index.js', 'dist/src/index.d.ts', 'dist/src/cli/haret.js', 'bin/haret.js', 'package.json']);
    expect(packedFiles.filter((file) => file.endsWith('.ts') && !file.endsWith('.d.ts'))).to.deep.equal([]);
  });

  it("the README's embedding example runs on plain Node from the installed package and exits by itself", async () => {
    writeFileSync(join(consumer, 'example.js'), readmeExample());
    const { stdout, stderr } = await sh(process.execPath, ['example.js'], consumer, 60_000);
    expect(stderr).to.equal('');
    // The example prints the failed multi-CAS's code and `executed`, then the value read back,
    // the put's version and the number of actors.
    expect(stdout).to.match(/^cas_failed true\non 1 [1-9]\d*\n$/);
  });

  it('the installed `haret` command prints the version', async () => {
    const { stdout } = await sh(join(consumer, 'node_modules/.bin/haret'), ['--version'], consumer, 30_000);
    expect(stdout.trim()).to.equal(manifest.version);
  });

  it("a TypeScript file importing 'haret' type-checks (strict, nodenext, @types/node) against the shipped declarations", async () => {
    const source = [
      "import { HaretError, connect, startNode, type NodeOptions } from 'haret';",
      '',
      "const options: NodeOptions = { namespaces: ['default'] };",
      'export async function flag(): Promise<string> {',
      '  const node = await startNode(options);',
      "  const db = node.client('default');",
      "  await db.create('/flag', 'blob');",
      "  await db.blobPut('/flag', 'on');",
      "  const got = await db.blobGet('/flag');",
      '  await node.stop();',
      '  return new TextDecoder().decode(got.value);',
      '}',
      'export const isHaretError = (error: unknown): boolean => error instanceof HaretError;',
      'export const remote = connect;',
      // The declarations are typed, not `any`: a wrong call must be an error (else this directive is one).
      '// @ts-expect-error a namespace name is a string',
      'export const wrong = (): Promise<unknown> => startNode({ namespaces: [42] });',
      '',
    ].join('\n');
    writeFileSync(join(consumer, 'consumer.ts'), source);
    const tsc = join(root, 'node_modules/.bin/tsc');
    await sh(tsc, ['--noEmit', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022', '--strict', '--types', 'node', 'consumer.ts'], consumer, 60_000);
  });
});
