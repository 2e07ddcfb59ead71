// The usage page's charts, drawn with the vendored uPlot from the JSON the page carries. Each
// chart has a table of the same figures under it; the charts follow light and dark mode.
(function () {
  "use strict";
  var money = new Intl.NumberFormat(undefined, { style: "currency", currency: "USD", maximumFractionDigits: 4 });
  var whole = new Intl.NumberFormat(undefined, { maximumFractionDigits: 0 });
  var charts = [];

  function css(name) {
    return getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  }

  function palette() {
    return ["--c1", "--c2", "--c3", "--c4", "--c5", "--c6", "--c7"].map(css);
  }

  // uPlot draws series in order: each bar is drawn at its running total, tallest first, so the
  // visible bands stack; the legend shows each series' own value.
  function stacked(sets) {
    var totals = sets.length ? sets[0].values.map(function () { return 0; }) : [];
    var tops = sets.map(function (set) {
      return set.values.map(function (v, i) { totals[i] += v; return totals[i]; });
    });
    return tops.reverse();
  }

  function axes(labels, format) {
    var text = css("--text"), line = css("--line");
    return [
      { stroke: text, grid: { show: false }, ticks: { stroke: line }, incrs: [1, 2, 5, 7, 14],
        values: function (u, splits) {
          return splits.map(function (i) { return labels[i] === undefined ? "" : labels[i]; });
        } },
      { stroke: text, grid: { stroke: line, width: 1 }, ticks: { stroke: line }, size: 64,
        values: function (u, splits) { return splits.map(format); } }
    ];
  }

  function barChart(el, labels, sets, format, xLabel) {
    var colors = palette();
    var tops = stacked(sets);
    var shown = sets.slice().reverse();
    var bars = uPlot.paths.bars({ size: [0.7, 48] });
    var series = [{ label: xLabel,
      value: function (u, v) { return v == null ? "–" : labels[v]; } }].concat(shown.map(function (set, n) {
      var color = set.color ? css(set.color) : colors[(sets.length - 1 - n) % colors.length];
      return {
        label: set.label, fill: color, stroke: color, width: 0, paths: bars, points: { show: false },
        value: function (u, v, si, i) { return i == null ? "–" : format(shown[si - 1].values[i]); }
      };
    }));
    var x = labels.map(function (_, i) { return i; });
    var opts = {
      width: el.clientWidth || 300, height: 240, series: series, axes: axes(labels, format),
      scales: { x: { time: false, range: [-0.5, labels.length - 0.5] },
                y: { range: function (u, min, max) { return [0, max > 0 ? max * 1.1 : 1]; } } },
      cursor: { points: { show: false }, drag: { x: false, y: false } },
      legend: { live: true }
    };
    charts.push({ el: el, plot: new uPlot(opts, [x].concat(tops), el) });
  }

  function draw() {
    var source = document.getElementById("chart-data");
    if (!source) return;
    var data = JSON.parse(source.textContent);
    var days = data.days.map(function (d) { return d.slice(5); });
    charts.forEach(function (c) { c.plot.destroy(); });
    charts = [];
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var kind = el.dataset.chart;
      if (kind === "cost-platform" || kind === "cost-byok") {
        barChart(el, days, data.cost[kind.slice(5)], function (v) { return money.format(v); }, "Day");
      } else if (kind === "runs") {
        barChart(el, days, data.runs, function (v) { return whole.format(v); }, "Day");
      } else if (kind === "durations") {
        var crews = data.durations.map(function (d) { return d.label; });
        barChart(el, crews, [{ label: "p50 work time (s)",
          values: data.durations.map(function (d) { return d.value; }) }],
          function (v) { return v.toFixed(1) + " s"; }, "Crew");
      }
    });
  }

  function resize() {
    charts.forEach(function (c) { c.plot.setSize({ width: c.el.clientWidth, height: 240 }); });
  }

  document.addEventListener("DOMContentLoaded", draw);
  window.addEventListener("resize", resize);
  window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", draw);
})();
