/**
 * The dependency rule of haret, checked over the real import graph by dependency-cruiser
 * (test/unit/dependency_rule.test.ts runs it; `npx depcruise src actors runtime bin` prints it).
 *
 *   shell (src/node, src/net, src/cli, src/coord, src/index.ts) -> actors -> runtime
 *   shell and actors -> core (src/base, src/vr, src/tree, src/client, src/api, src/watch)
 *   src/coord (the coordination recipes) is part of the client library: below src/node and
 *   src/cli like src/net; the core reaches it only through the factory the shell injects.
 *   runtime imports nothing of ours outside runtime/; the core imports only the core,
 *   and src/base (the shared vocabulary) only itself.
 *
 * Paths are relative to the repository root. npm packages and Node's built-in modules are
 * outside this rule (the core's purity test decides which of those the core may use).
 *
 * TypeScript is parsed with swc (@swc/core), not the `typescript` package: the project builds
 * with TypeScript 7, the native compiler, whose npm package has no JavaScript compiler API,
 * and dependency-cruiser reads TypeScript only through that API (TypeScript < 7) or swc.
 * swc's AST keeps `import type` declarations, so type-only imports count like any other.
 */

/** The core: pure folders. */
const CORE = '^src/(base|vr|tree|client|api|watch)/';
/** Where imports outside our own code resolve: npm packages. */
const NPM = '(^|/)node_modules/';
/** Node's built-ins (`node:fs`, ...) and npm packages are not ours: the rule ignores them. */
const NOT_OURS = ['core', 'npm', 'npm-dev', 'npm-optional', 'npm-peer', 'npm-bundled', 'npm-no-pkg', 'npm-unknown'];

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'core-imports-only-core',
      comment: 'The core (src/base, src/vr, src/tree, src/client, src/api, src/watch) imports only the core.',
      severity: 'error',
      from: { path: CORE },
      to: { pathNot: [CORE, NPM], dependencyTypesNot: NOT_OURS },
    },
    {
      name: 'base-imports-only-base',
      comment: 'src/base is the vocabulary every core folder shares: it imports nothing else of ours.',
      severity: 'error',
      from: { path: '^src/base/' },
      to: { pathNot: ['^src/base/', NPM], dependencyTypesNot: NOT_OURS },
    },
    {
      name: 'runtime-imports-only-runtime',
      comment: 'runtime/ is a generic actor runtime: it knows nothing of haret (no core, no actors, no shell).',
      severity: 'error',
      from: { path: '^runtime/' },
      to: { pathNot: ['^runtime/', NPM], dependencyTypesNot: NOT_OURS },
    },
    {
      name: 'actors-import-runtime-and-core',
      comment: 'actors/ binds the core to the runtime: it imports actors/, runtime/ and the core, never the shell.',
      severity: 'error',
      from: { path: '^actors/' },
      to: { pathNot: ['^actors/', '^runtime/', CORE, NPM], dependencyTypesNot: NOT_OURS },
    },
    {
      name: 'shell-imports-the-product-only',
      comment: 'The shell (src/node, src/net, src/cli, src/coord, src/index.ts) imports the product (src, actors, runtime), never tests, benchmarks or bin/.',
      severity: 'error',
      from: { path: ['^src/(node|net|cli|coord)/', '^src/index\\.ts$'] },
      to: { pathNot: ['^src/', '^actors/', '^runtime/', NPM], dependencyTypesNot: NOT_OURS },
    },
    {
      name: 'net-not-node-or-cli',
      comment:
        'src/net (servers, connect(), cluster links) and src/coord (the coordination recipes both use) sit below src/node and src/cli: they import neither (nor the public entry, which re-exports them).',
      severity: 'error',
      from: { path: '^src/(net|coord)/' },
      to: { path: ['^src/(node|cli)/', '^src/index\\.ts$'] },
    },
    {
      name: 'node-not-cli',
      comment: 'src/node (startNode, the embedding API) does not import the command line (src/cli) nor the public entry.',
      severity: 'error',
      from: { path: '^src/node/' },
      to: { path: ['^src/cli/', '^src/index\\.ts$'] },
    },
    {
      name: 'bin-imports-cli-only',
      comment: 'bin/ holds only the executable entry: it loads the command line and nothing else of ours.',
      severity: 'error',
      from: { path: '^bin/' },
      to: { pathNot: ['^src/cli/', NPM], dependencyTypesNot: NOT_OURS },
    },
    {
      name: 'client-library-loads-no-node',
      comment:
        'The client library (connect(), the admin client, the coordination recipes) runs in any process: it must not load, even transitively, startNode, the actors or the worker runtime.',
      severity: 'error',
      from: { path: ['^src/net/(admin_client|connect)\\.ts$', '^src/coord/'] },
      to: { path: ['^src/node/', '^actors/', '^runtime/'], reachable: true },
    },
    {
      name: 'no-cycle-across-folders',
      // Cycles inside one folder are allowed. Today: src/vr's normal.ts, view_change.ts and
      // state_transfer.ts call each other (the protocol's handlers are mutually recursive, and
      // no module touches another's bindings while loading), and src/tree/cas.ts imports a type
      // from tree.ts, which calls multiCas (type-only: erased at run time).
      comment: 'No import cycle leaves the folder it starts in (src/<folder>, actors, runtime, bin): folders form a layered graph.',
      severity: 'error',
      from: { path: '^(src/[^/]+/|actors/|runtime/|bin/|src/index\\.ts$)' },
      to: { circular: true, via: { pathNot: '^$1' } },
    },
    {
      name: 'not-to-unresolvable',
      comment: 'Every import of ours resolves: an import the cruiser cannot follow would be an edge no rule sees.',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    parser: 'swc',
    // Follow our own files; record npm packages as leaves without walking into them.
    doNotFollow: { path: NPM },
    // No `exclude`: the cruise starts from src, actors, runtime and bin, and an import from
    // there into test/ or bench/ must be seen (shell-imports-the-product-only).
    moduleSystems: ['es6', 'cjs'],
    enhancedResolveOptions: {
      // Sources import with explicit `.ts` extensions (rewriteRelativeImportExtensions);
      // the conditions are those Node uses for an ESM import.
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json'],
      conditionNames: ['import', 'node', 'default'],
      exportsFields: ['exports'],
      mainFields: ['module', 'main'],
    },
  },
};
