// The event search page: the time picker's custom fields, the histogram (ECharts), clickable rows.
// The CSP allows no inline script; the histogram's data comes in a <script type="application/json">.
(function () {
  "use strict";

  function searchWithRange(range) {
    var url = new URL(window.location.href);
    url.searchParams.set("range", range);
    url.searchParams.delete("start");
    url.searchParams.delete("end");
    url.searchParams.delete("offset");
    url.searchParams.delete("done");
    window.location.assign(url.toString());
  }

  // "Custom range" shows the From/To fields; a preset hides them (and they are not sent).
  function setUpPicker() {
    var choice = document.getElementById("range-choice");
    var custom = document.getElementById("custom-range");
    if (!choice || !custom) { return; }
    function sync() {
      var on = choice.value === "custom";
      custom.hidden = !on;
      custom.querySelectorAll("input").forEach(function (input) { input.disabled = !on; });
    }
    choice.addEventListener("change", sync);
    sync();
  }

  function cssVar(name, fallback) {
    var value = getComputedStyle(document.documentElement).getPropertyValue(name);
    return value ? value.trim() : fallback;
  }

  function drawHistogram() {
    var box = document.getElementById("histogram");
    var source = document.getElementById("histogram-data");
    if (!box || !source || typeof window.echarts === "undefined") { return; }
    var data = JSON.parse(source.textContent || "{}");
    if (!data.counts) { return; }
    var chart = window.echarts.init(box, null, { renderer: "canvas" });
    var text = cssVar("--muted", "#5b6778");
    chart.setOption({
      animation: false,
      grid: { left: 48, right: 12, top: 12, bottom: 28 },
      tooltip: { trigger: "axis", axisPointer: { type: "shadow" } },
      xAxis: { type: "category", data: data.labels, axisLabel: { color: text }, axisTick: { alignWithLabel: true } },
      yAxis: { type: "value", minInterval: 1, axisLabel: { color: text }, splitLine: { lineStyle: { opacity: 0.3 } } },
      series: [{ name: box.getAttribute("data-series") || "", type: "bar", data: data.counts, barCategoryGap: "15%",
                 itemStyle: { color: cssVar("--accent", "#1f6feb") } }]
    });
    box.title = box.getAttribute("data-hint") || "";
    // A click on a bar narrows the search to that bar's time.
    chart.on("click", function (params) {
      var range = data.ranges && data.ranges[params.dataIndex];
      if (range) { searchWithRange(range); }
    });
    window.addEventListener("resize", function () { chart.resize(); });
  }

  // A click anywhere on an event's row opens it (the time cell is the link for keyboards and readers).
  function setUpRows() {
    document.querySelectorAll("table.events tbody tr[data-href]").forEach(function (row) {
      row.addEventListener("click", function (event) {
        if (event.target.closest("a, button, input") || (window.getSelection && String(window.getSelection()))) {
          return;
        }
        window.location.assign(row.getAttribute("data-href"));
      });
    });
  }

  function start() {
    setUpPicker();
    drawHistogram();
    setUpRows();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
