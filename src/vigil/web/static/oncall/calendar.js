// The on-call calendar's timeline (ECharts): one row per schedule, one bar per shift.
// The CSP allows no inline script; the shifts come in a <script type="application/json">.
(function () {
  "use strict";

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name);
    return value ? value.trim() : fallback;
  }

  var PALETTE = ["#1f6feb", "#2da44e", "#bf8700", "#8250df", "#cf222e", "#0a7ea4", "#9a6700", "#6e7781"];

  function draw() {
    var box = document.getElementById("oncall-timeline");
    var source = document.getElementById("oncall-timeline-data");
    if (!box || !source || typeof window.echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent || "{}");
    if (!data.schedules || !data.schedules.length) { return; }
    box.style.height = (60 + data.schedules.length * 44) + "px";
    var colours = {};
    var next = 0;
    var items = data.shifts.map(function (s) {
      if (!(s.user in colours)) { colours[s.user] = PALETTE[next++ % PALETTE.length]; }
      return { value: [s.row, s.start, s.end, s.user, s.layer], itemStyle: { color: colours[s.user] } };
    });
    var chart = window.echarts.init(box, null, { renderer: "canvas" });
    var text = cssVar("--muted", "#5b6778");
    chart.setOption({
      animation: false,
      grid: { left: 140, right: 16, top: 8, bottom: 28 },
      tooltip: {
        formatter: function (p) {
          var v = p.value;
          return v[3] + " (" + v[4] + ")<br>" + new Date(v[1]).toLocaleString() + " - " + new Date(v[2]).toLocaleString();
        }
      },
      xAxis: { type: "time", min: data.start, max: data.end, axisLabel: { color: text } },
      yAxis: { type: "category", data: data.schedules, inverse: true, axisLabel: { color: text } },
      series: [{
        type: "custom",
        encode: { x: [1, 2], y: 0 },
        data: items,
        renderItem: function (params, api) {
          var row = api.value(0);
          var from = api.coord([api.value(1), row]);
          var to = api.coord([api.value(2), row]);
          var height = api.size([0, 1])[1] * 0.6;
          var shape = window.echarts.graphic.clipRectByRect(
            { x: from[0], y: from[1] - height / 2, width: Math.max(to[0] - from[0], 1), height: height },
            { x: params.coordSys.x, y: params.coordSys.y, width: params.coordSys.width, height: params.coordSys.height });
          return shape && { type: "rect", shape: shape, style: api.style({ text: to[0] - from[0] > 60 ? api.value(3) : "", textFill: "#fff" }) };
        }
      }]
    });
    box.title = box.getAttribute("data-hint") || "";
    window.addEventListener("resize", function () { chart.resize(); });
  }

  document.addEventListener("DOMContentLoaded", draw);
})();
