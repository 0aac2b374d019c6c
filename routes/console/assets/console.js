// The console's only script: draws each chart from its data attribute with uPlot, on load and on
// content htmx swaps in. Everything else works without it.
(() => {
  "use strict";
  const COLORS = ["#1d4ed8", "#b45309", "#047857", "#b91c1c", "#6d28d9"];
  const COMPACT = new Intl.NumberFormat("en-US", { notation: "compact", maximumFractionDigits: 1 });

  const draw = (el) => {
    if (el.dataset.drawn || typeof uPlot === "undefined") return;
    const spec = JSON.parse(el.dataset.chart);
    const xs = spec.days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
    const opts = {
      width: Math.max(280, el.clientWidth),
      height: 220,
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), "Etc/UTC"),
      series: [
        {},
        ...spec.series.map((s, i) => ({
          label: s.label,
          stroke: COLORS[i % COLORS.length],
          width: 2,
        })),
      ],
      axes: [{}, { size: 56, values: (_u, ticks) => ticks.map((n) => COMPACT.format(n)) }],
    };
    el.dataset.drawn = "1";
    new uPlot(opts, [xs, ...spec.series.map((s) => s.values)], el);
  };

  const drawAll = (root) => (root || document).querySelectorAll(".plot[data-chart]").forEach(draw);

  document.addEventListener("DOMContentLoaded", () => drawAll());
  document.addEventListener("htmx:load", (e) => drawAll(e.target));
})();
