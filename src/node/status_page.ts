/**
 * The status page (`GET /` on the HTTP listener, issue 17): one self-contained document, its
 * style and script inline (src/node/status_page_script.ts), nothing fetched from anywhere but
 * its own ./status.json and ./history.json. It ships inside the package as this module's
 * string: no build step, no files to copy, no CDN.
 *
 * The page is served with a Content-Security-Policy that names the hashes of its own style and
 * script and allows connections to its own origin only, so the browser itself refuses any
 * other request (and any script injected through the node's data, which the script never
 * parses as HTML anyway).
 *
 * Accessibility: landmarks and headings; tables with captions and th scope; the serving state
 * in a polite live region; each chart an `img` with a text alternative and the figures by
 * minute as a table; states in words and symbols, never colour alone; a visible focus ring; a
 * button that pauses the updates (WCAG 2.2.2).
 */

import { createHash } from 'node:crypto';
import { statusPageScript } from './status_page_script.ts';

const style = `
:root { color-scheme: light dark; --bg: #ffffff; --fg: #1f2328; --muted: #57606a; --rule: #8c959f; --grid: #d0d7de; --panel: #f6f8fa;
  --good: #116329; --bad: #a40e26; --a: #0550ae; --b: #953800; --focus: #0550ae; }
@media (prefers-color-scheme: dark) {
  :root { --bg: #0d1117; --fg: #e6edf3; --muted: #9198a1; --rule: #6e7681; --grid: #30363d; --panel: #161b22;
    --good: #3fb950; --bad: #ff7b72; --a: #79c0ff; --b: #ffa657; --focus: #79c0ff; }
}
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); font: 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; }
header.top { display: flex; flex-wrap: wrap; align-items: center; justify-content: space-between; gap: 0.5rem 1rem; padding: 0.75rem 1.25rem; border-bottom: 1px solid var(--rule); }
h1 { font-size: 1.3rem; margin: 0; }
h2 { font-size: 1.1rem; margin: 1.5rem 0 0.5rem; }
main { padding: 0 1.25rem 2rem; max-width: 72rem; }
.muted { color: var(--muted); }
.state { font-weight: 600; }
.good { color: var(--good); }
.bad { color: var(--bad); }
.primary { font-weight: 700; }
button, input { font: inherit; color: inherit; }
button { background: var(--panel); border: 1px solid var(--rule); border-radius: 6px; padding: 0.35rem 0.8rem; cursor: pointer; }
button[aria-pressed="true"] { background: var(--fg); color: var(--bg); }
input { background: var(--bg); border: 1px solid var(--rule); border-radius: 6px; padding: 0.35rem 0.5rem; min-width: 16rem; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
#connection { margin: 1rem 0 0; }
#connection:empty { margin: 0; }
#token-form { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; }
.table-scroll { overflow-x: auto; margin: 0.25rem 0 1rem; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
caption { text-align: left; font-weight: 600; padding: 0.25rem 0; }
th, td { padding: 0.25rem 0.75rem; border-bottom: 1px solid var(--rule); text-align: right; white-space: nowrap; }
th:first-child, td:first-child { text-align: left; }
thead th { font-weight: 600; border-bottom-width: 2px; }
tbody th { font-weight: 600; }
dl.figures { display: flex; flex-wrap: wrap; gap: 0.5rem 2rem; margin: 0.5rem 0 1rem; }
dl.figures dt { color: var(--muted); font-size: 0.9rem; }
dl.figures dd { margin: 0; font-size: 1.15rem; font-weight: 600; font-variant-numeric: tabular-nums; }
.charts { display: flex; flex-wrap: wrap; gap: 1rem 2rem; }
figure { margin: 0; flex: 1 1 24rem; max-width: 40rem; }
figcaption { font-weight: 600; display: flex; flex-wrap: wrap; gap: 0.25rem 1rem; align-items: center; }
figure svg.chart { display: block; width: 100%; height: auto; background: var(--panel); border: 1px solid var(--rule); border-radius: 6px; }
svg.key { vertical-align: middle; margin-right: 0.3rem; }
.grid line { stroke: var(--grid); stroke-width: 1; }
.grid text { fill: var(--muted); font-size: 14px; }
.line { fill: none; stroke-width: 2; stroke-linejoin: round; stroke-linecap: round; }
.line.series-a { stroke: var(--a); }
.line.series-b { stroke: var(--b); stroke-dasharray: 6 4; }
.dot.series-a { fill: var(--a); }
.dot.series-b { fill: var(--bg); stroke: var(--b); stroke-width: 2; }
details { margin-top: 1rem; }
summary { cursor: pointer; padding: 0.25rem 0; }
`;

const keyLine = (series: 'a' | 'b'): string => `<svg class="key" width="28" height="10" aria-hidden="true" focusable="false"><line x1="1" y1="5" x2="27" y2="5" class="line series-${series}"/></svg>`;

const body = `
<header class="top">
  <h1>Status of haret node <span id="node-name">&hellip;</span></h1>
  <button id="pause" type="button" aria-pressed="false">Pause updates</button>
</header>
<main>
  <noscript><p>This page needs JavaScript to load the node's status. The same figures are at <a href="./status.json">status.json</a>, <a href="./history.json">history.json</a> and <a href="./metrics">metrics</a>.</p></noscript>
  <p id="connection" class="state bad" role="status" aria-live="polite"></p>
  <section id="token-section" aria-labelledby="token-heading" hidden>
    <h2 id="token-heading">Admin token</h2>
    <p>This node requires its admin token. The page sends it as an <code>Authorization: Bearer</code> header with each of its requests and keeps it in this tab only: reloading the page asks again.</p>
    <form id="token-form">
      <label for="token-input">Admin token</label>
      <input id="token-input" name="token" type="password" autocomplete="off" spellcheck="false" required>
      <button type="submit">Show status</button>
    </form>
    <p id="token-message" class="bad" role="alert"></p>
  </section>
  <div id="content" hidden>
    <section aria-labelledby="node-heading">
      <h2 id="node-heading">Node</h2>
      <p id="serving" class="state" role="status" aria-live="polite">Loading&hellip;</p>
      <ul id="problems" class="bad" hidden></ul>
      <p id="updated" class="muted"></p>
    </section>
    <section id="cluster" aria-labelledby="cluster-heading" hidden>
      <h2 id="cluster-heading">Cluster</h2>
      <div id="cluster-scroll" class="table-scroll" role="region" aria-labelledby="cluster-caption">
        <table>
          <caption id="cluster-caption">Members of this node's cluster and the link to each</caption>
          <thead><tr><th scope="col">Member</th><th scope="col">Link</th><th scope="col">Cluster address</th><th scope="col">Client address</th></tr></thead>
          <tbody id="cluster-body"></tbody>
        </table>
      </div>
    </section>
    <section aria-labelledby="namespaces-heading">
      <h2 id="namespaces-heading">Namespaces</h2>
      <div id="namespace-tables"></div>
    </section>
    <section aria-labelledby="commits-heading">
      <h2 id="commits-heading">Throughput and commit latency</h2>
      <dl class="figures">
        <div><dt>Latest second</dt><dd id="latest-rate">&mdash;</dd></div>
        <div><dt>Commits in the last minute</dt><dd id="minute-commits">&mdash;</dd></div>
        <div><dt>Latency p50 / p99, last minute</dt><dd id="minute-latency">&mdash;</dd></div>
        <div><dt>Mean latency, last minute</dt><dd id="minute-mean">&mdash;</dd></div>
      </dl>
      <div class="charts">
        <figure>
          <figcaption><span>Commits per second</span><span>${keyLine('a')}commits/s</span></figcaption>
          <svg id="throughput-chart" class="chart" role="img" aria-label="Commits per second: loading" viewBox="0 0 640 180" focusable="false"></svg>
          <p id="throughput-summary" class="muted"></p>
        </figure>
        <figure>
          <figcaption><span>Commit latency</span><span>${keyLine('a')}p50</span><span>${keyLine('b')}p99 (dashed)</span></figcaption>
          <svg id="latency-chart" class="chart" role="img" aria-label="Commit latency: loading" viewBox="0 0 640 180" focusable="false"></svg>
          <p id="latency-summary" class="muted"></p>
        </figure>
      </div>
      <p class="muted">Measured from a request's arrival at this node to its reply, committed requests only; one sample a second, the percentiles estimated from the histogram's buckets.</p>
      <details>
        <summary>The figures by minute, as a table</summary>
        <div id="minutes-scroll" class="table-scroll" role="region" aria-labelledby="minutes-caption">
          <table>
            <caption id="minutes-caption">Commits and commit latency by minute, newest first</caption>
            <thead><tr><th scope="col">Minute</th><th scope="col">Commits</th><th scope="col">Commits/s</th><th scope="col">p50 (ms)</th><th scope="col">p99 (ms)</th><th scope="col">Mean (ms)</th></tr></thead>
            <tbody id="minutes-body"></tbody>
          </table>
        </div>
      </details>
    </section>
  </div>
</main>
`;

const html = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>haret status</title>
<link rel="icon" href="data:,">
<style>${style}</style>
</head>
<body>${body}<script>${statusPageScript}</script>
</body>
</html>
`;

function sha256(text: string): string {
  return `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;
}

/** Only the page's own style and script run; it may fetch from its own origin and nothing else. */
const contentSecurityPolicy = [
  "default-src 'none'",
  `script-src ${sha256(statusPageScript)}`,
  `style-src ${sha256(style)}`,
  "connect-src 'self'",
  // The empty data: icon keeps the browser from asking for /favicon.ico.
  'img-src data:',
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

export type StatusPage = { readonly contentType: string; readonly body: string; readonly headers: Readonly<Record<string, string>> };

export const statusPage: StatusPage = {
  contentType: 'text/html; charset=utf-8',
  body: html,
  headers: { 'Content-Security-Policy': contentSecurityPolicy, 'X-Content-Type-Options': 'nosniff', 'Referrer-Policy': 'no-referrer', 'X-Frame-Options': 'DENY' },
};
