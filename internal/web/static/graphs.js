// graphs.js draws live graphs with uPlot (static/vendor/uPlot.iife.min.js) from the
// columnar history of the stats API, polled every 5 s while the page is visible. The
// #graphs element says which graphs (data-graphs) and where their history is (data-src):
//
//   stream  the dashboard: bitrate in, frame rate, keyframe interval and viewers of the
//           user's broadcast, from /api/v1/stats/streams/NAME/history. It is polled while
//           the dashboard's Live badge (#status-live, kept by dashboard.js) shows, and after
//           the broadcast ends until its history expires (404).
//   server  the admin page: CPU, memory, bandwidth in and out, live streams and viewers,
//           from /api/v1/stats/history.
//
// Each graph's caption shows the latest value, or the one under the cursor. It exposes
// window.onairGraphs = {charts: {id: uPlot}, updates, points, error} for tests.
(function () {
  'use strict';

  var root = document.getElementById('graphs');
  var note = document.getElementById('graphs-note');
  if (!root || !note) {
    window.onairGraphs = null;
    return;
  }
  if (!window.uPlot) {
    window.onairGraphs = null;
    note.textContent = 'graph asset missing: run make build';
    return;
  }

  var POLL_MS = 5000;
  var HEIGHT = 170;
  var MiB = 1024 * 1024;
  var kind = root.dataset.graphs;
  var src = root.dataset.src;

  // Formatters: full values for captions, short ones for axis ticks.
  function round1(v) {
    return Math.round(v * 10) / 10;
  }

  function bits(v) {
    if (v >= 1e6) {
      return round1(v / 1e6) + ' Mbit/s';
    }
    if (v >= 1e3) {
      return Math.round(v / 1e3) + ' kbit/s';
    }
    return Math.round(v) + ' bit/s';
  }

  function bitsTick(v) {
    if (v >= 1e6) {
      return round1(v / 1e6) + 'M';
    }
    if (v >= 1e3) {
      return Math.round(v / 1e3) + 'k';
    }
    return String(Math.round(v));
  }

  function mib(v) {
    var m = v / MiB;
    return (m >= 100 ? Math.round(m) : round1(m)) + ' MiB';
  }

  function mibTick(v) {
    return Math.round(v / MiB) + 'M';
  }

  function pad(n) {
    return n < 10 ? '0' + n : String(n);
  }

  // timeTicks labels the time axis: hh:mm, with seconds when the ticks are closer than a
  // minute.
  function timeTicks(u, splits, axis, space, incr) {
    return splits.map(function (t) {
      var d = new Date(t * 1000);
      var s = pad(d.getHours()) + ':' + pad(d.getMinutes());
      return incr < 60 ? s + ':' + pad(d.getSeconds()) : s;
    });
  }

  function unit(u) {
    return function (v) {
      return round1(v) + u;
    };
  }

  function count(v) {
    return String(Math.round(v));
  }

  // The graphs of each page. A series has the history's column (key), a label and a
  // colour (a CSS custom property of #graphs); floor is the smallest top of the y scale.
  var defs = {
    stream: [
      { id: 'bitrate', title: 'Bitrate in', fmt: bits, tick: bitsTick, floor: 1000,
        series: [{ key: 'bitrate_in', label: 'in', color: '--graph-1' }] },
      { id: 'fps', title: 'Frame rate', fmt: unit(' fps'), tick: round1, floor: 30,
        series: [{ key: 'fps', label: 'fps', color: '--graph-2' }] },
      { id: 'keyframe', title: 'Keyframe interval', fmt: unit(' s'), floor: 2,
        series: [{ key: 'keyframe_interval', label: 'interval', color: '--graph-3' }] },
      { id: 'viewers', title: 'Viewers', fmt: count, integer: true, floor: 5,
        series: [{ key: 'viewers', label: 'viewers', color: '--graph-4' }] }
    ],
    server: [
      { id: 'cpu', title: 'CPU', fmt: unit(' %'), tick: unit('%'), floor: 10,
        series: [{ key: 'cpu_percent', label: 'cpu', color: '--graph-1' }] },
      { id: 'memory', title: 'Memory (RSS)', fmt: mib, tick: mibTick, floor: 64 * MiB,
        incrs: [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000].map(function (m) {
          return m * MiB;
        }),
        series: [{ key: 'rss_bytes', label: 'rss', color: '--graph-2' }] },
      { id: 'bandwidth', title: 'Bandwidth', fmt: bits, tick: bitsTick, floor: 1000,
        series: [{ key: 'bw_in', label: 'in', color: '--graph-1' },
          { key: 'bw_out', label: 'out', color: '--graph-3' }] },
      { id: 'streams', title: 'Live streams', fmt: count, integer: true, floor: 5,
        series: [{ key: 'streams', label: 'streams', color: '--graph-4' }] },
      { id: 'viewers', title: 'Viewers', fmt: count, integer: true, floor: 5,
        series: [{ key: 'viewers', label: 'viewers', color: '--graph-5' }] }
    ]
  }[kind];
  if (!defs || !src) {
    window.onairGraphs = null;
    return;
  }

  var state = { charts: {}, updates: 0, points: 0, error: '' };
  window.onairGraphs = state;

  var style = window.getComputedStyle(root);

  function cssVar(name, fallback) {
    var v = style.getPropertyValue(name).trim();
    return v || fallback;
  }

  // translucent returns a #rrggbb colour with an alpha, for the area under a line.
  function translucent(hex) {
    return /^#[0-9a-f]{6}$/i.test(hex) ? hex + '24' : 'transparent';
  }

  var axisColor = cssVar('--muted', '#5d6470');
  var gridColor = cssVar('--border', '#dfe2e7');
  var pointFill = cssVar('--code-bg', '#eef0f3'); // the graph's background

  // figures holds, per graph, its definition, caption value element and uPlot instance.
  var figures = defs.map(function (def) {
    var fig = document.createElement('figure');
    fig.className = 'graph';
    fig.id = 'graph-' + def.id;
    var cap = document.createElement('figcaption');
    var title = document.createElement('span');
    title.className = 'graph-title';
    title.textContent = def.title;
    var value = document.createElement('span');
    value.className = 'graph-value';
    cap.appendChild(title);
    cap.appendChild(value);
    var plot = document.createElement('div');
    plot.className = 'graph-plot';
    fig.appendChild(cap);
    fig.appendChild(plot);
    root.appendChild(fig);
    def.series.forEach(function (s) {
      s.stroke = cssVar(s.color, '#1f5fbf');
    });
    return { def: def, value: value, plot: plot, chart: null };
  });

  // showValue writes the caption: the values at index idx (the cursor's), else the latest.
  function showValue(f, u, idx) {
    var n = u.data[0].length;
    if (idx == null) {
      idx = n - 1;
    }
    f.value.textContent = '';
    if (idx < 0) {
      return;
    }
    f.def.series.forEach(function (s, i) {
      var v = u.data[i + 1][idx];
      var item = document.createElement('span');
      item.className = 'graph-item';
      if (f.def.series.length > 1) {
        var swatch = document.createElement('span');
        swatch.className = 'graph-swatch';
        swatch.style.backgroundColor = s.stroke; // CSSOM: allowed by style-src 'self'
        item.appendChild(swatch);
        item.appendChild(document.createTextNode(s.label + ' '));
      }
      item.appendChild(document.createTextNode(v == null ? '–' : f.def.fmt(v)));
      f.value.appendChild(item);
    });
    if (idx !== n - 1) {
      var at = new Date(u.data[0][idx] * 1000);
      var when = document.createElement('span');
      when.className = 'graph-at';
      when.textContent = at.toLocaleTimeString();
      f.value.appendChild(when);
    }
  }

  function create(f, data) {
    var def = f.def;
    var series = [{}].concat(def.series.map(function (s) {
      return {
        label: s.label,
        stroke: s.stroke,
        fill: def.series.length === 1 ? translucent(s.stroke) : undefined,
        width: 2,
        points: { fill: pointFill }
      };
    }));
    var yAxis = {
      stroke: axisColor,
      grid: { stroke: gridColor, width: 1 },
      ticks: { stroke: gridColor, width: 1 },
      size: 52,
      values: function (u, splits) {
        return splits.map(def.tick || def.fmt);
      }
    };
    if (def.integer) {
      yAxis.incrs = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000, 100000];
    } else if (def.incrs) {
      yAxis.incrs = def.incrs;
    }
    var opts = {
      width: f.plot.clientWidth || 300,
      height: HEIGHT,
      padding: [8, 28, 0, 0], // room for the last time label
      legend: { show: false },
      cursor: { drag: { x: false, y: false, setScale: false } },
      scales: {
        x: { time: true },
        y: {
          range: function (u, min, max) {
            return [0, Math.max(def.floor, (max || 0) * 1.15)];
          }
        }
      },
      axes: [
        { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor, width: 1 },
          values: timeTicks, space: 60 },
        yAxis
      ],
      series: series,
      hooks: {
        setCursor: [function (u) {
          showValue(f, u, u.cursor.idx);
        }]
      }
    };
    f.chart = new window.uPlot(opts, data, f.plot);
    state.charts[def.id] = f.chart;
    if (window.ResizeObserver) {
      new window.ResizeObserver(function () {
        var w = f.plot.clientWidth;
        if (w > 0 && w !== f.chart.width) {
          f.chart.setSize({ width: w, height: HEIGHT });
        }
      }).observe(f.plot);
    }
  }

  function setNote(text) {
    note.textContent = text;
    note.hidden = !text;
  }

  function draw(hist) {
    var n = hist.time.length;
    if (n === 0) {
      setNote('Waiting for the first sample…');
      return;
    }
    if (kind === 'stream') {
      setNote(hist.live ? '' : 'Offline: these graphs show your last broadcast.');
    } else {
      setNote('');
    }
    root.hidden = false; // before creating, so the plots have a width
    figures.forEach(function (f) {
      var data = [hist.time].concat(f.def.series.map(function (s) {
        return hist[s.key] || [];
      }));
      if (f.chart) {
        f.chart.setData(data);
      } else {
        create(f, data);
      }
      showValue(f, f.chart, f.chart.cursor.idx);
    });
    state.points = n;
    state.updates++;
  }

  var timer = 0;
  var inflight = false;
  var liveBadge = kind === 'stream' ? document.getElementById('status-live') : null;

  // wanted tells whether there is a history to fetch: always for the server; for a stream
  // while it is live or its last broadcast is on show (so no 404 every 5 s while offline).
  function wanted() {
    return !liveBadge || !liveBadge.hidden || !root.hidden;
  }

  function poll() {
    clearTimeout(timer);
    timer = setTimeout(poll, POLL_MS);
    if (inflight || document.hidden || !wanted()) {
      return;
    }
    inflight = true;
    window.onair.api('GET', src).then(function (hist) {
      inflight = false;
      state.error = '';
      draw(hist);
    }, function (err) {
      inflight = false;
      if (err.status === 404 && kind === 'stream') {
        // No sample yet, or offline and the last broadcast's history has expired.
        state.error = '';
        root.hidden = true;
        setNote(!liveBadge.hidden ? 'Waiting for the first sample…'
          : 'Bitrate in, frame rate, keyframe interval and viewers appear here while you are live.');
        return;
      }
      state.error = err.message;
      setNote('Could not load the graphs: ' + err.message);
    });
  }

  if (liveBadge && window.MutationObserver) {
    new window.MutationObserver(function () {
      if (!liveBadge.hidden && root.hidden) {
        // Just went live: the history has the stream from the sampler's next tick on.
        setNote('Waiting for the first sample…');
        clearTimeout(timer);
        timer = setTimeout(poll, POLL_MS + 1000);
      }
    }).observe(liveBadge, { attributes: true, attributeFilter: ['hidden'] });
  }
  document.addEventListener('visibilitychange', function () {
    if (!document.hidden) {
      poll();
    }
  });
  poll();
})();
