/* patron web app: draws the page's charts with Plotly from the JSON blocks the server rendered.
   No inline script, no request to another host: the data are in the page. */
(function () {
  "use strict";
  var palette = { revenue: "#2f6fed", gp2: "#12a37f", members: "#2f6fed", excluded: "#d9dee7", grid: "#edf0f5", text: "#3b4556" };
  var layoutBase = {
    margin: { l: 56, r: 16, t: 8, b: 40 }, paper_bgcolor: "rgba(0,0,0,0)", plot_bgcolor: "rgba(0,0,0,0)",
    font: { family: "Inter, system-ui, -apple-system, Segoe UI, Roboto, sans-serif", size: 12, color: palette.text },
    legend: { orientation: "h", x: 0, y: 1.12 }, hovermode: "x unified",
    xaxis: { gridcolor: palette.grid, zeroline: false }, yaxis: { gridcolor: palette.grid, zeroline: true, zerolinecolor: "#c7cdd8" }
  };
  var config = { displaylogo: false, responsive: true, modeBarButtonsToRemove: ["lasso2d", "select2d"] };

  function data(el) {
    var block = document.getElementById(el.getAttribute("data-source"));
    return block ? JSON.parse(block.textContent) : null;
  }

  var charts = {
    "customer-orders": function (el, d) {
      var currency = el.getAttribute("data-currency") || "";
      var text = d.order_id.map(function (id, i) { return id + " · " + (d.channel[i] || ""); });
      return [[
        { type: "bar", name: "Revenue", x: d.ordered_at, y: d.revenue, text: text, hoverinfo: "x+y+text", textposition: "none", marker: { color: palette.revenue } },
        { type: "scatter", mode: "lines+markers", name: "GP2", x: d.ordered_at, y: d.gp2, line: { color: palette.gp2, width: 2 }, marker: { size: 7 } }
      ], { yaxis: Object.assign({}, layoutBase.yaxis, { title: { text: currency } }), xaxis: Object.assign({}, layoutBase.xaxis, { type: "date" }), bargap: 0.5 }];
    },
    "audiences": function (el, d) {
      var names = d.audiences.map(function (n) { return n.replace(/_/g, " "); });
      return [[
        { type: "bar", name: "Members", orientation: "h", y: names, x: d.members, marker: { color: palette.members } },
        { type: "bar", name: "No consent", orientation: "h", y: names, x: d.excluded, marker: { color: palette.excluded } }
      ], { barmode: "stack", hovermode: "y unified", legend: { orientation: "h", x: 0, y: 1.12, traceorder: "normal" }, margin: { l: 170, r: 16, t: 8, b: 32 }, yaxis: { autorange: "reversed" } }];
    }
  };

  document.querySelectorAll("[data-chart]").forEach(function (el) {
    var make = charts[el.getAttribute("data-chart")], d = data(el);
    if (!make || !d || typeof Plotly === "undefined") { return; }
    var made = make(el, d);
    Plotly.newPlot(el, made[0], Object.assign({}, layoutBase, made[1]), config);
  });
})();
