/**
 * Issue 17, "A status page": `GET /` on the node's HTTP listener, and the rolling history of
 * commits it charts (`/history.json`).
 *
 * - The history (src/node/commit_history.ts) from known histogram readings: per-second
 *   figures, bucket-estimated percentiles, the bound on samples, minutes that add up.
 * - Over HTTP: the page with its Content-Security-Policy (the hashes of its own inline style
 *   and script), the token rule (the page open, its JSON behind the Bearer token).
 * - In a real headless browser (Debian's chromium driven by playwright-core): an embedded node,
 *   the namespace table with the replicas' roles, the throughput figure and chart after
 *   writes, no console error, no request outside the page's origin, the accessibility facts
 *   (captions and header scopes, the live region, the charts' text alternatives, every
 *   interactive element reachable by Tab, a visible focus, text contrast), and a screenshot in
 *   test-output/status-page.png; then a node with an admin token and a cluster (served by the
 *   real backend over a given status) where the page asks for the token, refuses a wrong one,
 *   and lists the cluster's members and where each replica runs.
 *   Skipped, saying why, only where no Chromium executable exists (CI installs it: .ci/run).
 */

import { expect } from 'chai';
import fc from 'fast-check';
import { createHash } from 'node:crypto';
import { accessSync, constants as fsConstants, mkdirSync, statSync } from 'node:fs';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { Registry } from 'prom-client';
import { HttpServer } from '../../src/net/http.ts';
import { CommitHistory, figuresBetween, quantileMs, readCommitTotals, type CommitTotals, type HistoryDocument } from '../../src/node/commit_history.ts';
import { httpBackend, type HttpCluster } from '../../src/node/http_backend.ts';
import { startNode, type HaretNode, type NodeStatus } from '../../src/node/index.ts';
import { NodeMetrics } from '../../src/node/metrics.ts';
import { RequestMetrics } from '../../src/node/request_metrics.ts';
import { StatusSnapshots } from '../../src/node/status_snapshot.ts';
import { httpGet } from './http_get.ts';

/**
 * The little of the DOM that the functions run inside the page use: the project's TypeScript
 * lib has no DOM, and these names are module-local (nothing global changes).
 */
type DomElement = {
  readonly tagName: string;
  readonly id: string;
  readonly textContent: string | null;
  readonly tabIndex: number;
  readonly dataset: Record<string, string | undefined>;
  readonly offsetParent: unknown;
  readonly firstElementChild: DomElement | null;
  readonly cells: ArrayLike<DomElement> & Iterable<DomElement>;
  getAttribute(name: string): string | null;
  querySelector(selector: string): DomElement | null;
  querySelectorAll(selector: string): ArrayLike<DomElement> & Iterable<DomElement>;
  closest(selector: string): DomElement | null;
  getClientRects(): { readonly length: number };
  blur(): void;
};
declare const document: {
  readonly activeElement: DomElement | null;
  readonly body: DomElement;
  getElementById(id: string): DomElement | null;
  querySelectorAll(selector: string): ArrayLike<DomElement> & Iterable<DomElement>;
};
declare function getComputedStyle(element: DomElement): { readonly color: string; readonly backgroundColor: string; readonly outlineStyle: string };

const outputDir = fileURLToPath(new URL('../../test-output/', import.meta.url));

/** Cumulative totals over bounds [1 ms, 10 ms, +Inf]: `fast` commits of 0.5 ms, `slow` of 5 ms, `huge` of 50 ms. */
function totals(fast: number, slow: number, huge: number): CommitTotals {
  return {
    count: fast + slow + huge,
    sumSeconds: fast * 0.0005 + slow * 0.005 + huge * 0.05,
    bounds: [0.001, 0.01, Infinity],
    cumulative: [fast, fast + slow, fast + slow + huge],
  };
}

describe('status page: the rolling commit history', () => {
  it('estimates percentiles from bucket counts as histogram_quantile does, and the mean exactly', () => {
    const figures = figuresBetween(totals(0, 0, 0), totals(50, 49, 1), 2);
    expect(figures).to.deep.equal({ seconds: 2, commits: 100, perSecond: 50, p50Ms: 1, p99Ms: 10, meanMs: 3.2 });
    // Within a bucket, linear: rank 25 of 50 in [0, 1 ms] is 0.5 ms.
    expect(quantileMs(0.25, [0.001, 0.01, Infinity], [50, 99, 100], 100)).to.equal(0.5);
    // Beyond the highest finite bound: that bound.
    expect(quantileMs(0.99, [0.001, 0.01, Infinity], [0, 0, 10], 10)).to.equal(10);
    expect(quantileMs(0.5, [0.001, Infinity], [0, 0], 0)).to.equal(null);
    // No commits: no latency. A count that went down (a new registry) counts from zero.
    expect(figuresBetween(totals(5, 0, 0), totals(5, 0, 0), 1)).to.include({ commits: 0, perSecond: 0, p50Ms: null, meanMs: null });
    expect(figuresBetween(totals(50, 0, 0), totals(3, 0, 0), 1).commits).to.equal(3);
  });

  it('keeps at most samplesMax samples; their commits and the minutes add up to the histogram between the ends', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.nat(40), fc.nat(5), fc.nat(2)), { minLength: 1, maxLength: 200 }), fc.integer({ min: 2, max: 150 }), async (steps, samplesMax) => {
        let current = totals(0, 0, 0);
        const history = new CommitHistory(() => Promise.resolve(current), { samplesMax });
        const seen: CommitTotals[] = [];
        await history.sample(1_000_000, 0);
        seen.push(current);
        for (const [index, [fast, slow, huge]] of steps.entries()) {
          current = totals(current.cumulative[0]! + fast, current.cumulative[1]! - current.cumulative[0]! + slow, current.count - current.cumulative[1]! + huge);
          await history.sample(1_000_000 + (index + 1) * 1_000, (index + 1) * 1_000);
          seen.push(current);
        }
        const document: HistoryDocument = history.document();
        expect(history.length).to.equal(Math.min(samplesMax, steps.length + 1));
        const trimmed = seen.length - history.length;
        const first = seen[trimmed]!;
        const last = seen[seen.length - 1]!;
        // Each sample is the interval of one second ending at a point kept; the very first point has none.
        expect(document.samples.commits).to.have.length(trimmed === 0 ? history.length - 1 : history.length);
        expect(document.samples.perSecond).to.deep.equal(document.samples.commits);
        expect(document.samples.commits.reduce((a, b) => a + b, 0)).to.equal(last.count - (trimmed === 0 ? first.count : seen[trimmed - 1]!.count));
        const minuteCommits = document.minutes.reduce((a, m) => a + m.commits, 0);
        expect(minuteCommits).to.equal(last.count - first.count);
        expect(document.minutes.length).to.be.at.most(Math.ceil(samplesMax / 60) + 1);
        for (const minute of document.minutes) expect(minute.seconds).to.be.within(1, 61);
        expect(document.lastMinute).to.deep.equal(document.minutes[0] ?? null);
        expect(document.windowMs).to.equal(samplesMax * 1_000);
      }),
      { numRuns: 60 },
    );
  });

  it('reads the commit-latency histogram of the request metrics, summed over paths and namespaces', async () => {
    const registry = new Registry();
    const requests = new RequestMetrics(registry);
    requests.settled('embedded', 'a', 'create', 'ok', true, 0, 0.3);
    requests.settled('tcp', 'b', 'create', 'ok', true, 0, 4);
    requests.settled('tcp', 'b', 'create', 'busy', false, 0, 400);
    const read = await readCommitTotals(registry);
    expect(read?.count).to.equal(2);
    expect(read?.sumSeconds).to.be.closeTo(0.0043, 1e-9);
    expect(read?.bounds[read.bounds.length - 1]).to.equal(Infinity);
    // 0.3 ms is within the first bucket (0.5 ms), 4 ms within the 5 ms one.
    expect(read?.cumulative[0]).to.equal(1);
    expect(read?.cumulative[read.bounds.indexOf(0.005)]).to.equal(2);
    expect(await readCommitTotals(new Registry())).to.equal(null);
  });
});

/** A status as node.status() gives it: replica 0 of `default` here (the primary), replicas 1 and 2 on other nodes. */
function clusterStatus(): NodeStatus {
  const replica = {
    actor: 'default/r0', worker: 'default.r0', state: 'running' as const, restarts: 1, failure: null, retryAt: null, role: 'primary', ns: 'default',
    status: 'normal', view: 3, op: 12, commit: 11, mailboxDepth: 0, mailboxDropped: 0, watches: 2, leases: 1, detail: { role: 'primary', status: 'normal', view: 3 },
  };
  return { actors: [replica], workers: [], serving: false, problems: ['replica default/r9 failed: <script>alert(1)</script>; restarts after the cool-down'] };
}

const cluster: HttpCluster = {
  members: [
    { name: 'n1', clusterAddress: '127.0.0.1:7001', clientAddress: '127.0.0.1:8001', adminAddress: null, incarnation: 1, link: 'self' } as HttpCluster['members'][number],
    { name: 'n2', clusterAddress: '127.0.0.1:7002', clientAddress: null, adminAddress: null, incarnation: 1, link: 'up' } as HttpCluster['members'][number],
    { name: 'n3', clusterAddress: '127.0.0.1:7003', clientAddress: null, adminAddress: null, incarnation: 1, link: 'down' } as HttpCluster['members'][number],
  ],
  namespaces: [{ name: 'default', nodes: ['n1', 'n2', 'n3'] }],
};

/** The real backend and listener over a given status: a cluster member with an admin token. */
async function clusterServer(authToken: string): Promise<HttpServer> {
  const snapshots = new StatusSnapshots(() => Promise.resolve(clusterStatus()), 1_000);
  const namespaces = () => [{ name: 'default', replicaCount: 3 }];
  const metrics = new NodeMetrics(new Registry(), snapshots, { namespaces, unavailable: () => new Map(), cluster: () => null }, null);
  return HttpServer.start(httpBackend({ name: 'n1', namespaces, cluster: () => cluster }, snapshots, metrics), { authToken });
}

function addressOf(node: HaretNode): string {
  const address = node.httpAddress;
  if (address === null) throw new Error('the node serves no HTTP');
  return `${address.host}:${address.port}`;
}

describe('status page over HTTP', function () {
  this.timeout(60_000);

  it('serves the page with a policy naming the hashes of its own style and script, and nothing to fetch elsewhere', async () => {
    const node = await startNode({ logLevel: 'silent', http: { address: '127.0.0.1:0' } });
    try {
      const address = addressOf(node);
      const page = await httpGet(address, '/');
      expect(page.status).to.equal(200);
      expect(page.headers['content-type']).to.equal('text/html; charset=utf-8');
      expect(page.headers['x-content-type-options']).to.equal('nosniff');
      const policy = String(page.headers['content-security-policy']);
      expect(policy).to.contain("default-src 'none'").and.contain("connect-src 'self'");
      const hash = (text: string): string => `'sha256-${createHash('sha256').update(text).digest('base64')}'`;
      const script = /<script>([\s\S]*)<\/script>/.exec(page.body)?.[1];
      const style = /<style>([\s\S]*)<\/style>/.exec(page.body)?.[1];
      expect(policy).to.contain(`script-src ${hash(script ?? '')}`).and.contain(`style-src ${hash(style ?? '')}`);
      // No src or href to anywhere but the page's own paths (and the empty data: icon).
      const references = [...page.body.matchAll(/\b(?:src|href)="([^"]*)"/g)].map((match) => match[1]);
      expect(references.every((reference) => reference === 'data:,' || reference?.startsWith('./'))).to.equal(true);
      const head = await httpGet(address, '/', { method: 'HEAD' });
      expect([head.status, head.body]).to.deep.equal([200, '']);

      const history = await httpGet(address, '/history.json');
      expect(history.status).to.equal(200);
      const document = JSON.parse(history.body) as HistoryDocument;
      expect(document).to.include({ intervalMs: 1_000, windowMs: 600_000 });
      expect(Object.keys(document.samples).sort()).to.deep.equal(['atMs', 'commits', 'meanMs', 'p50Ms', 'p99Ms', 'perSecond']);
    } finally {
      await node.stop();
    }
  });

  it('with an admin token: the page is served without it, its JSON only with it; the status lists the cluster and where each replica runs', async () => {
    const server = await clusterServer('page-token');
    try {
      const { host, port } = server.address();
      const address = `${host}:${port}`;
      expect((await httpGet(address, '/')).status).to.equal(200);
      for (const path of ['/status.json', '/history.json', '/metrics']) {
        expect((await httpGet(address, path)).status, path).to.equal(401);
        expect((await httpGet(address, path, { token: 'nope' })).status, path).to.equal(401);
      }
      const status = await httpGet(address, '/status.json', { token: 'page-token' });
      expect(status.status).to.equal(200);
      const document = JSON.parse(status.body) as { cluster: { members: { name: string; link: string }[] }; namespaces: { name: string; replicas: { index: number; local: boolean; node?: string; role?: string }[] }[] };
      expect(document.cluster.members.map((m) => `${m.name}:${m.link}`)).to.deep.equal(['n1:self', 'n2:up', 'n3:down']);
      expect(document.namespaces[0]?.replicas.map((r) => (r.local ? `r${r.index}:${r.role}` : `r${r.index}@${r.node}`))).to.deep.equal(['r0:primary', 'r1@n2', 'r2@n3']);
      expect((await httpGet(address, '/history.json', { token: 'page-token' })).status).to.equal(200);
    } finally {
      await server.close();
    }
  });
});

/** The Chromium to drive: CHROMIUM_PATH, else the first of the usual names on PATH; null when none. */
function findChromium(): string | null {
  const candidates: string[] = [];
  const fromEnv = process.env['CHROMIUM_PATH'];
  if (fromEnv !== undefined && fromEnv !== '') candidates.push(fromEnv);
  for (const dir of (process.env['PATH'] ?? '').split(delimiter).filter((d) => d !== '')) {
    for (const name of ['chromium', 'chromium-browser', 'google-chrome', 'google-chrome-stable']) candidates.push(join(dir, name));
  }
  for (const candidate of candidates) {
    try {
      accessSync(candidate, fsConstants.X_OK);
      if (statSync(candidate).isFile()) return candidate;
    } catch {
      // Not there, or not executable: the next.
    }
  }
  return null;
}

/** What a page did that the tests hold against it. */
type Watched = { readonly consoleErrors: string[]; readonly requests: { url: string; authorization: string | undefined }[] };

function watch(page: Page): Watched {
  const watched: Watched = { consoleErrors: [], requests: [] };
  page.on('console', (message) => {
    if (message.type() === 'error') watched.consoleErrors.push(message.text());
  });
  page.on('pageerror', (error) => watched.consoleErrors.push(`uncaught: ${error.message}`));
  page.on('request', (request) => watched.requests.push({ url: request.url(), authorization: request.headers()['authorization'] }));
  return watched;
}

/** The relative luminance (WCAG 2) of a CSS rgb() colour. */
function luminance(css: string): number {
  const [r, g, b] = (css.match(/[\d.]+/g) ?? []).slice(0, 3).map((v) => {
    const c = Number(v) / 255;
    return c <= 0.03928 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;
  });
  return 0.2126 * (r ?? 0) + 0.7152 * (g ?? 0) + 0.0722 * (b ?? 0);
}

/** WCAG contrast ratio of an element's text colour over the page's background. */
async function contrastOf(page: Page, selector: string): Promise<number> {
  // Only the colours are read in the page: the arithmetic runs here.
  const colours = await page.$eval(selector, (element: DomElement) => ({ fg: getComputedStyle(element).color, bg: getComputedStyle(document.body).backgroundColor }));
  const [fg, bg] = [luminance(colours.fg), luminance(colours.bg)];
  return (Math.max(fg, bg) + 0.05) / (Math.min(fg, bg) + 0.05);
}

describe('status page in headless Chromium', function () {
  this.timeout(60_000);
  let browser: Browser | null = null;

  before(async function () {
    const executablePath = findChromium();
    if (executablePath === null) {
      console.log('    status page browser tests SKIPPED: no Chromium executable (set CHROMIUM_PATH, or install chromium, chromium-browser or google-chrome on PATH; CI installs Debian\'s chromium in .ci/run)');
      this.skip();
    }
    browser = await chromium.launch({ executablePath, headless: true, timeout: 30_000 });
  });

  after(async () => {
    await browser?.close();
  });

  it('shows the replicas with their roles, updates throughput and its chart after writes, makes no foreign request, and is keyboard and screen-reader friendly', async () => {
    if (browser === null) throw new Error('no browser');
    const node = await startNode({ logLevel: 'silent', http: { address: '127.0.0.1:0' } });
    const context = await browser.newContext({ viewport: { width: 1180, height: 900 } });
    try {
      const origin = `http://${addressOf(node)}`;
      const page = await context.newPage();
      const watched = watch(page);
      await page.goto(`${origin}/`, { timeout: 10_000 });

      // The namespace table: three replicas, one primary (the node's own answer), the others backups.
      await page.waitForFunction(() => [...document.querySelectorAll('#namespace-tables tbody tr')].filter((row) => row.textContent?.includes('normal')).length === 3, null, { timeout: 15_000 });
      const rows = await page.$$eval('#namespace-tables tbody tr', (trs: DomElement[]) => trs.map((tr) => [...tr.cells].map((cell) => cell.textContent ?? '')));
      expect(rows.map((row) => row[0])).to.deep.equal(['r0', 'r1', 'r2']);
      const primary = await node.primaryOf('default');
      expect(rows.map((row) => row[1])).to.deep.equal([0, 1, 2].map((index) => (index === primary ? 'primary' : 'backup')));
      expect(rows.every((row) => row[2] === 'normal')).to.equal(true);
      expect(await page.textContent('#namespace-tables caption')).to.contain('Namespace default: 3 replicas, primary r');
      expect(await page.textContent('#node-name')).to.equal('haret');
      expect(await page.title()).to.equal('haret status: haret');
      expect(await page.isHidden('#cluster')).to.equal(true);

      // Writes: the last minute's commits and the chart follow.
      const before = Number(await page.getAttribute('#minute-commits', 'data-value'));
      const pathBefore = await page.getAttribute('#throughput-chart path[data-series="commits"]', 'd');
      // Three bursts a second and a bit apart: several samples, so the chart draws a line.
      const bursts = 3;
      const perBurst = 20;
      const writes = bursts * perBurst;
      const db = node.client('default');
      for (let burst = 0; burst < bursts; burst += 1) {
        if (burst > 0) await new Promise((resolve) => setTimeout(resolve, 1_100));
        for (let i = 0; i < perBurst; i += 1) await db.create(`/page-${burst}-${i}`, 'blob');
      }
      await page.waitForFunction((wanted) => Number(document.getElementById('minute-commits')?.dataset['value']) >= wanted, before + writes, { timeout: 15_000 });
      const pathAfter = await page.getAttribute('#throughput-chart path[data-series="commits"]', 'd');
      expect(pathAfter).to.not.equal(pathBefore);
      // A line of several points, some above the zero line (y = 146 in the chart's coordinates).
      const ys = [...(pathAfter ?? '').matchAll(/[ML]([\d.]+) ([\d.]+)/g)].map((match) => Number(match[2]));
      expect(ys.length).to.be.at.least(2);
      expect(ys.filter((y) => y < 146).length).to.be.at.least(2);
      const throughputLabel = (await page.getAttribute('#throughput-chart', 'aria-label')) ?? '';
      const inAll = Number(/(\d+) commits in all/.exec(throughputLabel)?.[1]);
      expect(inAll).to.be.at.least(writes);
      expect(await page.textContent('#throughput-summary')).to.equal(throughputLabel);
      expect(await page.getAttribute('#latency-chart', 'aria-label')).to.match(/p50 [\d.]+ ms, p99 [\d.]+ ms/);
      expect(await page.$$eval('#latency-chart path[data-series]', (paths: DomElement[]) => paths.map((p) => p.getAttribute('d')?.length ?? 0).every((length) => length > 5))).to.equal(true);

      // Accessibility facts: the live region, captions and header scopes, the charts as images with text.
      expect(await page.getAttribute('#serving', 'aria-live')).to.equal('polite');
      expect(await page.textContent('#serving')).to.contain('Serving');
      const tables = await page.$$eval('table', (all: DomElement[]) =>
        all
          .filter((table) => table.offsetParent !== null || table.closest('details') !== null)
          .map((table) => ({
            caption: table.querySelector('caption')?.textContent ?? '',
            columnScopes: [...table.querySelectorAll('thead th')].map((th) => th.getAttribute('scope')),
            rowHeaders: [...table.querySelectorAll('tbody tr')].map((tr) => (tr.firstElementChild?.tagName === 'TH' ? tr.firstElementChild.getAttribute('scope') : null)),
          })),
      );
      expect(tables.length).to.be.at.least(2);
      for (const table of tables) {
        expect(table.caption).to.not.equal('');
        expect(table.columnScopes.every((scope) => scope === 'col')).to.equal(true);
        expect(table.rowHeaders.every((scope) => scope === 'row')).to.equal(true);
      }
      for (const chart of ['#throughput-chart', '#latency-chart']) expect(await page.getAttribute(chart, 'role')).to.equal('img');
      expect(await page.$$eval('h1, h2', (headings: DomElement[]) => headings.map((h) => h.tagName))).to.include.members(['H1', 'H2']);

      // Every interactive element is reached by Tab, in order, and shows a focus ring.
      const focusable = await page.$$eval('a[href], button, input, select, textarea, summary, [tabindex]', (elements: DomElement[]) =>
        elements
          .filter((element) => element.tabIndex >= 0 && element.getClientRects().length > 0)
          .map((element, index) => {
            element.dataset['tabCheck'] = String(index);
            return index;
          }),
      );
      expect(focusable.length).to.be.at.least(2);
      expect(await page.$$eval('[tabindex]', (elements: DomElement[]) => elements.filter((element) => element.tabIndex > 0).length)).to.equal(0);
      await page.evaluate(() => document.activeElement?.blur());
      const reached = new Set<string>();
      for (let press = 0; press < focusable.length + 2; press += 1) {
        await page.keyboard.press('Tab');
        const focused = await page.evaluate(() => {
          const element = document.activeElement;
          return { id: element?.dataset['tabCheck'] ?? null, outline: element === null ? 'none' : getComputedStyle(element).outlineStyle };
        });
        if (focused.id === null) continue;
        reached.add(focused.id);
        expect(focused.outline, `focus ring of element ${focused.id}`).to.not.equal('none');
      }
      expect([...reached].sort()).to.deep.equal(focusable.map(String).sort());
      // The pause button works from the keyboard and says its state.
      await page.focus('#pause');
      await page.keyboard.press('Enter');
      expect(await page.getAttribute('#pause', 'aria-pressed')).to.equal('true');
      expect(await page.textContent('#updated')).to.contain('updates paused');
      await page.keyboard.press('Space');
      expect(await page.getAttribute('#pause', 'aria-pressed')).to.equal('false');

      for (const scheme of ['light', 'dark'] as const) {
        await page.emulateMedia({ colorScheme: scheme });
        for (const selector of ['body', '.muted', '#serving', '#namespace-tables td', 'figcaption']) expect(await contrastOf(page, selector), `${selector} (${scheme})`).to.be.at.least(4.5);
      }
      await page.emulateMedia({ colorScheme: 'light' });

      await page.click('summary');
      await page.waitForFunction(() => document.querySelectorAll('#minutes-body tr').length >= 1, null, { timeout: 5_000 });
      mkdirSync(outputDir, { recursive: true });
      const screenshot = join(outputDir, 'status-page.png');
      await page.screenshot({ path: screenshot, fullPage: true });
      expect(statSync(screenshot).size).to.be.greaterThan(10_000);

      expect(watched.consoleErrors).to.deep.equal([]);
      const foreign = watched.requests.filter((request) => !request.url.startsWith('data:') && new URL(request.url).origin !== origin);
      expect(foreign).to.deep.equal([]);
      expect(watched.requests.some((request) => request.url === `${origin}/history.json`)).to.equal(true);
    } finally {
      await context.close();
      await node.stop();
    }
  });

  it('asks for the admin token and refuses a wrong one, sends it only as a Bearer header, then lists the cluster members and where each replica runs', async () => {
    if (browser === null) throw new Error('no browser');
    const server = await clusterServer('page-token');
    const context = await browser.newContext({ viewport: { width: 1180, height: 900 } });
    try {
      const { host, port } = server.address();
      const origin = `http://${host}:${port}`;
      const page = await context.newPage();
      const watched = watch(page);
      await page.goto(`${origin}/`, { timeout: 10_000 });
      await page.waitForSelector('#token-input', { state: 'visible', timeout: 10_000 });
      expect(await page.isHidden('#content')).to.equal(true);
      // The form has the focus: the token is typed and sent from the keyboard.
      expect(await page.evaluate(() => document.activeElement?.id)).to.equal('token-input');
      await page.keyboard.type('wrong-token');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.getElementById('token-message')?.textContent?.includes('refused'), null, { timeout: 10_000 });
      expect(await page.getAttribute('#token-message', 'role')).to.equal('alert');
      await page.fill('#token-input', 'page-token');
      await page.keyboard.press('Enter');
      await page.waitForFunction(() => document.querySelectorAll('#cluster-body tr').length === 3, null, { timeout: 10_000 });

      const members = await page.$$eval('#cluster-body tr', (trs: DomElement[]) => trs.map((tr) => [...tr.cells].slice(0, 2).map((cell) => cell.textContent)));
      expect(members).to.deep.equal([['n1', 'this node'], ['n2', '\u2714 up'], ['n3', '\u2716 down']]);
      const rows = await page.$$eval('#namespace-tables tbody tr', (trs: DomElement[]) => trs.map((tr) => [...tr.cells].slice(0, 3).map((cell) => cell.textContent)));
      expect(rows).to.deep.equal([['r0', 'primary', 'normal'], ['r1', '\u2014', 'on node n2'], ['r2', '\u2014', 'on node n3']]);
      expect(await page.textContent('#serving')).to.equal('\u26a0 Not serving: 1 problem.');
      // The problem is shown as text, never run as markup.
      expect(await page.textContent('#problems li')).to.contain('<script>alert(1)</script>');

      const tokenRequests = watched.requests.filter((request) => request.authorization !== undefined);
      expect(tokenRequests.map((request) => request.authorization)).to.include('Bearer page-token');
      expect(watched.requests.every((request) => !request.url.includes('token'))).to.equal(true);
      // Chrome reports each refused request (401) on the console; nothing else is allowed there.
      expect(watched.consoleErrors.filter((error) => !error.includes('401'))).to.deep.equal([]);
      expect(watched.requests.filter((request) => !request.url.startsWith('data:') && new URL(request.url).origin !== origin)).to.deep.equal([]);
    } finally {
      await context.close();
      await server.close();
    }
  });
});
