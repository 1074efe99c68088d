/**
 * The status page's script (src/node/status_page.ts), run by the browser: it polls
 * ./status.json and ./history.json every second, fills the tables in place, draws the two
 * charts as SVG, and asks for the admin token when the node answers 401.
 *
 * Plain ES2020 with no dependencies, written as a string so that it ships inside the package
 * with nothing to build. It builds the document with textContent and createElement only:
 * nothing from the node (namespace names, problems) is ever parsed as HTML. The token is kept
 * in a variable of this page (never in the address, storage or a cookie) and sent as
 * `Authorization: Bearer`; reloading the page asks for it again.
 *
 * Kept free of backquotes and dollar-brace so that it can sit in a template literal.
 */

export const statusPageScript = String.raw`
'use strict';
(function () {
  var pollMs = 1000;
  var svgNs = 'http://www.w3.org/2000/svg';
  var token = null;
  var paused = false;
  var timer = null;
  var lastServingText = null;
  var lastConnectionText = null;
  var lastUpdatedMs = null;
  var lastStatus = null;

  function byId(id) {
    var found = document.getElementById(id);
    if (found === null) throw new Error('the page lacks #' + id);
    return found;
  }

  var el = {
    nodeName: byId('node-name'),
    content: byId('content'),
    tokenSection: byId('token-section'),
    tokenForm: byId('token-form'),
    tokenInput: byId('token-input'),
    tokenMessage: byId('token-message'),
    connection: byId('connection'),
    serving: byId('serving'),
    updated: byId('updated'),
    problems: byId('problems'),
    pause: byId('pause'),
    cluster: byId('cluster'),
    clusterBody: byId('cluster-body'),
    namespaces: byId('namespace-tables'),
    latestRate: byId('latest-rate'),
    minuteCommits: byId('minute-commits'),
    minuteLatency: byId('minute-latency'),
    minuteMean: byId('minute-mean'),
    throughputChart: byId('throughput-chart'),
    throughputSummary: byId('throughput-summary'),
    latencyChart: byId('latency-chart'),
    latencySummary: byId('latency-summary'),
    minutesBody: byId('minutes-body')
  };

  function text(node, value) {
    if (node.textContent !== value) node.textContent = value;
  }

  function orDash(value) {
    return value === null || value === undefined ? '\u2014' : String(value);
  }

  function formatMs(value) {
    if (value === null || value === undefined) return '\u2014';
    if (value < 10) return value.toFixed(2);
    if (value < 100) return value.toFixed(1);
    return String(Math.round(value));
  }

  function formatRate(value) {
    if (value === null || value === undefined) return '\u2014';
    return value < 100 ? value.toFixed(1) : String(Math.round(value));
  }

  function clock(ms) {
    return new Date(ms).toLocaleTimeString();
  }

  function make(tag, className, content) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (content !== undefined) node.textContent = content;
    return node;
  }

  /** Fills a tbody with rows of cells; the first cell of each row is its row header. Rows are reused. */
  function syncRows(tbody, rows) {
    while (tbody.rows.length > rows.length) tbody.deleteRow(tbody.rows.length - 1);
    rows.forEach(function (cells, rowIndex) {
      var row = tbody.rows[rowIndex];
      if (row === undefined || row.cells.length !== cells.length) {
        var fresh = document.createElement('tr');
        cells.forEach(function (_, cellIndex) {
          var cell = document.createElement(cellIndex === 0 ? 'th' : 'td');
          if (cellIndex === 0) cell.scope = 'row';
          fresh.appendChild(cell);
        });
        if (row === undefined) tbody.appendChild(fresh);
        else tbody.replaceChild(fresh, row);
        row = fresh;
      }
      cells.forEach(function (cell, cellIndex) {
        var node = row.cells[cellIndex];
        var content = typeof cell === 'object' && cell !== null ? cell : { text: String(cell), className: '' };
        text(node, content.text);
        if (node.className !== (content.className || '')) node.className = content.className || '';
      });
    });
  }

  /** A scrollable table region is a tab stop only when it does scroll (keyboard users can then scroll it). */
  function scrollableFocus(wrap) {
    if (wrap.scrollWidth > wrap.clientWidth + 1) wrap.tabIndex = 0;
    else wrap.removeAttribute('tabindex');
  }

  function request(path) {
    var headers = {};
    if (token !== null) headers.Authorization = 'Bearer ' + token;
    return fetch(path, { headers: headers, cache: 'no-store', credentials: 'same-origin', redirect: 'error' });
  }

  function setConnection(message) {
    if (message === lastConnectionText) return;
    lastConnectionText = message;
    // The live region stays in the document, empty when all is well, so that a screen reader announces what comes into it.
    text(el.connection, message);
  }

  function askToken(message) {
    var wasHidden = el.tokenSection.hidden;
    el.tokenSection.hidden = false;
    el.content.hidden = true;
    text(el.tokenMessage, message);
    if (wasHidden) el.tokenInput.focus();
  }

  async function refresh() {
    timer = null;
    try {
      var answers = await Promise.all([request('./status.json'), request('./history.json')]);
      if (answers[0].status === 401 || answers[1].status === 401) {
        askToken(token === null ? '' : 'The node refused this token. Enter its admin token again.');
        setConnection('');
        return;
      }
      answers.forEach(function (answer) {
        if (!answer.ok) throw new Error('the node answered ' + answer.status + ' ' + answer.statusText);
      });
      var status = await answers[0].json();
      var history = await answers[1].json();
      el.tokenSection.hidden = true;
      el.content.hidden = false;
      renderStatus(status);
      renderHistory(history);
      lastUpdatedMs = Date.now();
      lastStatus = status;
      renderUpdated();
      setConnection('');
    } catch (error) {
      setConnection('Cannot reach the node: ' + (error && error.message ? error.message : String(error)) + '. Retrying every ' + pollMs / 1000 + ' s.');
    } finally {
      schedule();
    }
  }

  function schedule() {
    if (paused || timer !== null || !el.tokenSection.hidden) return;
    timer = setTimeout(refresh, pollMs);
  }

  function renderUpdated() {
    var status = lastStatus;
    var parts = [];
    if (lastUpdatedMs !== null) parts.push('Updated ' + clock(lastUpdatedMs));
    if (status && status.stale) parts.push('the node did not report in time: this status is ' + status.ageSeconds + ' s old');
    if (paused) parts.push('updates paused');
    text(el.updated, parts.join('; ') + '.');
  }

  function renderStatus(status) {
    text(el.nodeName, status.node);
    var title = 'haret status: ' + status.node;
    if (document.title !== title) document.title = title;
    var serving = status.serving ? '\u2714 Serving' : '\u26a0 Not serving';
    serving += status.problems.length === 0 ? ': no problems.' : ': ' + status.problems.length + (status.problems.length === 1 ? ' problem.' : ' problems.');
    if (serving !== lastServingText) {
      lastServingText = serving;
      el.serving.className = status.serving && status.problems.length === 0 ? 'state good' : 'state bad';
      text(el.serving, serving);
    }
    var items = el.problems.children;
    while (items.length > status.problems.length) el.problems.removeChild(el.problems.lastChild);
    status.problems.forEach(function (problem, index) {
      if (index >= items.length) el.problems.appendChild(make('li'));
      text(items[index], problem);
    });
    el.problems.hidden = status.problems.length === 0;
    renderCluster(status.cluster);
    renderNamespaces(status.namespaces);
  }

  function renderCluster(cluster) {
    el.cluster.hidden = cluster === null || cluster === undefined;
    if (el.cluster.hidden) return;
    syncRows(el.clusterBody, cluster.members.map(function (member) {
      var link = member.link === 'self' ? { text: 'this node', className: '' } : member.link === 'up' ? { text: '\u2714 up', className: 'good' } : { text: '\u2716 down', className: 'bad' };
      return [member.name, link, orDash(member.clusterAddress), orDash(member.clientAddress)];
    }));
    scrollableFocus(byId('cluster-scroll'));
  }

  var replicaColumns = ['Replica', 'Role', 'Status', 'View', 'Op', 'Commit', 'Restarts', 'Leases', 'Watches', 'Worker'];

  function namespaceTable(name, index) {
    var section = make('section', 'namespace');
    section.dataset.namespace = name;
    var table = make('table');
    var caption = make('caption');
    caption.id = 'ns-caption-' + index;
    table.appendChild(caption);
    var head = make('thead');
    var headRow = make('tr');
    replicaColumns.forEach(function (column) {
      var th = make('th', '', column);
      th.scope = 'col';
      headRow.appendChild(th);
    });
    head.appendChild(headRow);
    table.appendChild(head);
    table.appendChild(make('tbody'));
    var wrap = make('div', 'table-scroll');
    wrap.setAttribute('role', 'region');
    wrap.setAttribute('aria-labelledby', caption.id);
    wrap.appendChild(table);
    section.appendChild(wrap);
    return section;
  }

  function renderNamespaces(namespaces) {
    var sections = el.namespaces.children;
    var same = sections.length === Math.max(1, namespaces.length) && (namespaces.length === 0
      ? sections[0].dataset.namespace === undefined
      : namespaces.every(function (ns, index) { return sections[index].dataset.namespace === ns.name; }));
    // Rebuilt only when the namespaces change: otherwise the cells are updated in place.
    if (!same) {
      while (el.namespaces.firstChild) el.namespaces.removeChild(el.namespaces.firstChild);
      namespaces.forEach(function (ns, index) { el.namespaces.appendChild(namespaceTable(ns.name, index)); });
      if (namespaces.length === 0) el.namespaces.appendChild(make('p', '', 'This node serves no namespace.'));
    }
    if (namespaces.length === 0) return;
    namespaces.forEach(function (ns, index) {
      var section = sections[index];
      var primary = ns.replicas.filter(function (r) { return r.local && r.role === 'primary' && r.status === 'normal'; })[0];
      var abnormal = ns.replicas.filter(function (r) { return r.local && r.status !== 'normal'; }).length;
      var remote = ns.replicas.filter(function (r) { return !r.local; }).length;
      var summary = 'Namespace ' + ns.name + ': ' + ns.replicaCount + (ns.replicaCount === 1 ? ' replica' : ' replicas');
      summary += primary ? ', primary r' + primary.index : ', no primary here';
      summary += abnormal === 0 ? '' : ', ' + abnormal + ' not in normal status';
      summary += remote === 0 ? '' : ', ' + remote + ' on other nodes';
      text(section.querySelector('caption'), summary);
      syncRows(section.querySelector('tbody'), ns.replicas.map(function (r) {
        if (!r.local) return ['r' + r.index, '\u2014', r.node ? 'on node ' + r.node : 'not on this node', '\u2014', '\u2014', '\u2014', '\u2014', '\u2014', '\u2014', '\u2014'];
        var statusCell = r.status === 'normal' ? { text: 'normal', className: 'good' } : { text: '\u26a0 ' + (r.status === null ? 'not reporting' : r.status.replace('_', ' ')), className: 'bad' };
        var role = r.role === 'primary' ? { text: 'primary', className: 'primary' } : { text: orDash(r.role), className: '' };
        var worker = r.state === 'running' ? { text: 'running', className: '' } : { text: '\u26a0 ' + r.state, className: 'bad' };
        return ['r' + r.index, role, statusCell, orDash(r.view), orDash(r.op), orDash(r.commit), orDash(r.restarts), orDash(r.leases), orDash(r.watches), worker];
      }));
      scrollableFocus(section.querySelector('.table-scroll'));
    });
  }

  function niceCeiling(value) {
    if (!(value > 0)) return 1;
    var power = Math.pow(10, Math.floor(Math.log10(value)));
    var steps = [1, 2, 2.5, 5, 10];
    for (var i = 0; i < steps.length; i += 1) if (steps[i] * power >= value) return steps[i] * power;
    return 10 * power;
  }

  function svg(tag, attributes, content) {
    var node = document.createElementNS(svgNs, tag);
    Object.keys(attributes).forEach(function (name) { node.setAttribute(name, String(attributes[name])); });
    if (content !== undefined) node.textContent = content;
    return node;
  }

  var plot = { left: 68, right: 628, top: 14, bottom: 146, width: 640, height: 180 };

  /** Draws series (values by sample) against time over the window; returns the y-axis maximum. */
  function drawChart(svgNode, atMs, windowMs, intervalMs, series, unitLabel, minimumMax) {
    var keep = [];
    Array.prototype.forEach.call(svgNode.childNodes, function (child) { if (child.nodeName === 'title' || child.nodeName === 'desc') keep.push(child); });
    while (svgNode.firstChild) svgNode.removeChild(svgNode.firstChild);
    keep.forEach(function (child) { svgNode.appendChild(child); });
    var nowMs = atMs.length === 0 ? 0 : atMs[atMs.length - 1];
    var max = minimumMax;
    series.forEach(function (s) { s.values.forEach(function (v) { if (v !== null && v > max) max = v; }); });
    max = niceCeiling(max);
    var x = function (t) { return plot.right - ((nowMs - t) / windowMs) * (plot.right - plot.left); };
    var y = function (v) { return plot.bottom - (v / max) * (plot.bottom - plot.top); };
    var grid = svg('g', { class: 'grid', 'aria-hidden': 'true' });
    [0, 0.5, 1].forEach(function (share) {
      var value = max * share;
      var label = value % 1 === 0 ? String(value) : value.toFixed(1);
      grid.appendChild(svg('line', { x1: plot.left, x2: plot.right, y1: y(value), y2: y(value) }));
      // The unit goes with the top figure only.
      grid.appendChild(svg('text', { x: plot.left - 6, y: y(value) + 4, 'text-anchor': 'end' }, share === 1 ? label + unitLabel : label));
    });
    [[plot.left, '\u2212' + spanText(windowMs), 'start'], [(plot.left + plot.right) / 2, '\u2212' + spanText(windowMs / 2), 'middle'], [plot.right, 'now', 'end']].forEach(function (tick) {
      grid.appendChild(svg('text', { x: tick[0], y: plot.height - 12, 'text-anchor': tick[2] }, tick[1]));
    });
    svgNode.appendChild(grid);
    series.forEach(function (s) {
      var d = '';
      var previousT = null;
      s.values.forEach(function (v, index) {
        var t = atMs[index];
        if (v === null) { previousT = null; return; }
        var gap = previousT === null || t - previousT > intervalMs * 2.5;
        d += (gap ? 'M' : 'L') + x(t).toFixed(1) + ' ' + y(v).toFixed(1) + ' ';
        previousT = t;
      });
      var path = svg('path', { d: d.trim() || 'M0 0', class: 'line ' + s.className, 'aria-hidden': 'true' });
      path.dataset.series = s.name;
      svgNode.appendChild(path);
      var lastIndex = -1;
      for (var i = s.values.length - 1; i >= 0; i -= 1) if (s.values[i] !== null) { lastIndex = i; break; }
      if (lastIndex >= 0) svgNode.appendChild(svg('circle', { cx: x(atMs[lastIndex]), cy: y(s.values[lastIndex]), r: 3.5, class: 'dot ' + s.className, 'aria-hidden': 'true' }));
    });
    return max;
  }

  function spanText(ms) {
    return ms >= 120000 ? Math.round(ms / 60000) + ' min' : Math.round(ms / 1000) + ' s';
  }

  /** The span the charts show: the history's age, at least a minute, at most its window. */
  function chartSpan(history) {
    var atMs = history.samples.atMs;
    var age = atMs.length === 0 ? 0 : atMs[atMs.length - 1] - atMs[0] + history.intervalMs;
    return Math.min(history.windowMs, Math.max(60000, Math.ceil(age / 60000) * 60000));
  }

  function peak(values) {
    var best = null;
    values.forEach(function (v) { if (v !== null && (best === null || v > best)) best = v; });
    return best;
  }

  function renderHistory(history) {
    var samples = history.samples;
    var minute = history.lastMinute;
    var latestRate = samples.perSecond.length === 0 ? null : samples.perSecond[samples.perSecond.length - 1];
    text(el.latestRate, formatRate(latestRate) + ' commits/s');
    el.latestRate.dataset.value = String(latestRate === null ? 0 : latestRate);
    text(el.minuteCommits, minute === null ? '\u2014' : minute.commits + ' (' + formatRate(minute.perSecond) + ' commits/s over ' + Math.round(minute.seconds) + ' s)');
    el.minuteCommits.dataset.value = String(minute === null ? 0 : minute.commits);
    text(el.minuteLatency, minute === null || minute.p50Ms === null ? 'no commits' : formatMs(minute.p50Ms) + ' ms / ' + formatMs(minute.p99Ms) + ' ms');
    text(el.minuteMean, minute === null || minute.meanMs === null ? 'no commits' : formatMs(minute.meanMs) + ' ms');

    var span = chartSpan(history);
    var spanName = span === 60000 ? 'minute' : spanText(span);
    var top = drawChart(el.throughputChart, samples.atMs, span, history.intervalMs, [{ name: 'commits', values: samples.perSecond, className: 'series-a' }], '/s', 1);
    var total = samples.commits.reduce(function (sum, v) { return sum + v; }, 0);
    var throughputText = 'Commits per second over the last ' + spanName + ' (scale 0 to ' + top + '): latest ' + formatRate(latestRate) + ', peak ' + formatRate(peak(samples.perSecond)) + ', ' + total + ' commits in all.';
    text(el.throughputSummary, throughputText);
    el.throughputChart.setAttribute('aria-label', throughputText);

    var latencyTop = drawChart(el.latencyChart, samples.atMs, span, history.intervalMs, [
      { name: 'p50', values: samples.p50Ms, className: 'series-a' },
      { name: 'p99', values: samples.p99Ms, className: 'series-b' }
    ], ' ms', 1);
    var latencyText = minute === null || minute.p50Ms === null
      ? 'Commit latency over the last ' + spanName + ': no commits in the last minute.'
      : 'Commit latency over the last ' + spanName + ' (scale 0 to ' + latencyTop + ' ms): last minute p50 ' + formatMs(minute.p50Ms) + ' ms, p99 ' + formatMs(minute.p99Ms) + ' ms, mean ' + formatMs(minute.meanMs) + ' ms; highest p99 of a second ' + formatMs(peak(samples.p99Ms)) + ' ms.';
    text(el.latencySummary, latencyText);
    el.latencyChart.setAttribute('aria-label', latencyText);

    syncRows(el.minutesBody, history.minutes.map(function (m) {
      return [clock(m.fromMs) + ' to ' + clock(m.toMs), String(m.commits), formatRate(m.perSecond), formatMs(m.p50Ms), formatMs(m.p99Ms), formatMs(m.meanMs)];
    }));
    scrollableFocus(byId('minutes-scroll'));
  }

  el.tokenForm.addEventListener('submit', function (event) {
    event.preventDefault();
    var value = el.tokenInput.value.trim();
    if (value === '') {
      text(el.tokenMessage, 'Enter the admin token.');
      return;
    }
    token = value;
    el.tokenInput.value = '';
    text(el.tokenMessage, 'Checking the token\u2026');
    el.tokenSection.hidden = true;
    if (timer !== null) clearTimeout(timer);
    refresh();
  });

  el.pause.addEventListener('click', function () {
    paused = !paused;
    el.pause.setAttribute('aria-pressed', paused ? 'true' : 'false');
    if (paused && timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    renderUpdated();
    if (!paused) refresh();
  });

  refresh();
})();
`;
