/* Draws every Plotly figure on the page. A container names the id of the JSON script
   (Django's json_script) holding the figure: <div data-figure="trend-figure">.
   Plotly itself comes from our static files; so does the world map's geometry, via
   data-topojson, so nothing is fetched from a CDN. data-markers names a JSON list of
   {date, label} (alerts) drawn as dashed vertical lines; data-country-url makes a map's
   countries links. */
(function () {
  "use strict";

  function readJSON(id) {
    var node = id && document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function addMarkers(layout, markers) {
    if (!markers || !markers.length) { return; }
    layout.shapes = layout.shapes || [];
    layout.annotations = layout.annotations || [];
    // Several alerts on one date share one line, with every label on hover.
    var byDate = {};
    markers.forEach(function (marker) {
      if (byDate[marker.date]) { byDate[marker.date].label += "<br>" + marker.label; }
      else { byDate[marker.date] = { date: marker.date, label: marker.label }; }
    });
    Object.keys(byDate).forEach(function (date) {
      var marker = byDate[date];
      layout.shapes.push({
        type: "line", xref: "x", yref: "paper", x0: marker.date, x1: marker.date, y0: 0, y1: 1,
        line: { color: "#a4161a", width: 1.5, dash: "dash" }
      });
      layout.annotations.push({
        xref: "x", yref: "paper", x: marker.date, y: 1, yanchor: "bottom", showarrow: false,
        text: "!", hovertext: marker.label, font: { size: 13, color: "#a4161a" }
      });
    });
  }

  // Set a layout value by a dotted path ("yaxis.ticktext"), creating objects on the way.
  function setPath(layout, path, value) {
    var keys = path.split(".");
    var node = layout;
    for (var i = 0; i < keys.length - 1; i++) {
      node[keys[i]] = node[keys[i]] || {};
      node = node[keys[i]];
    }
    node[keys[keys.length - 1]] = value;
  }

  var NARROW = 560;

  function draw(container) {
    var figure = readJSON(container.getAttribute("data-figure"));
    if (!figure || !window.Plotly) { return; }
    var layout = figure.layout || {};
    var narrow = container.clientWidth > 0 && container.clientWidth < NARROW;
    addMarkers(layout, readJSON(container.getAttribute("data-markers")));
    // A world map is wider than tall: keep its height in proportion to the width.
    if (layout.geo && container.clientWidth) {
      layout.height = Math.min(420, Math.max(180, Math.round(container.clientWidth * 0.42)));
    }
    if (narrow) {
      // A figure may say how it reads on a phone (shorter labels, no margin notes).
      var overrides = (layout.meta && layout.meta.narrow) || {};
      Object.keys(overrides).forEach(function (path) { setPath(layout, path, overrides[path]); });
      // Fewer date ticks: a dozen tilted labels would overlap each other.
      if (layout.xaxis && layout.xaxis.type === "date") { layout.xaxis.nticks = 4; }
      // Room for the axis title and tick labels, and a smaller font.
      layout.font = layout.font || {};
      layout.font.size = 11;
      if (layout.margin && layout.margin.r > 60) { layout.margin.r = 60; }
      // The map's colour legend goes below the map, where it takes no width from it.
      if (layout.geo) {
        layout.height = Math.round(container.clientWidth * 0.62) + 60;
        layout.margin = { l: 0, r: 0, t: 0, b: 50 };
        figure.data.forEach(function (trace) {
          if (trace.colorbar) {
            trace.colorbar.orientation = "h";
            trace.colorbar.x = 0.5;
            trace.colorbar.xanchor = "center";
            trace.colorbar.y = -0.02;
            trace.colorbar.yanchor = "top";
            trace.colorbar.len = 0.95;
            trace.colorbar.thickness = 12;
            trace.colorbar.title = { text: "" };
          }
        });
      }
    }
    // The toolbar (zoom, download) only on hover with a mouse, above the plot area: on
    // a phone it would cover the top of the chart and the alert markers.
    var config = {
      responsive: true,
      displaylogo: false,
      displayModeBar: narrow || window.matchMedia("(hover: none)").matches ? false : "hover",
      modeBarButtonsToRemove: ["select2d", "lasso2d", "autoScale2d"]
    };
    var topojson = container.getAttribute("data-topojson");
    if (topojson) { config.topojsonURL = topojson; }
    window.Plotly.newPlot(container, figure.data, layout, config).then(function () {
      followCountryClicks(container);
    });
  }

  // On the world map (and only there: data-country-url), a click on a country opens
  // its page. The URL carries the placeholder ISO3, replaced by the point's location.
  function followCountryClicks(container) {
    var template = container.getAttribute("data-country-url");
    if (!template) { return; }
    container.on("plotly_click", function (event) {
      var point = event && event.points && event.points[0];
      if (point && /^[A-Z]{3}$/.test(point.location || "")) {
        window.location.href = template.replace("ISO3", point.location);
      }
    });
  }

  // Charts on screen are drawn at once; the others as they come near it, so the first
  // chart a reader sees does not wait for every chart further down the page.
  function drawAll() {
    var containers = Array.prototype.slice.call(document.querySelectorAll("[data-figure]"));
    if (!("IntersectionObserver" in window)) {
      containers.forEach(draw);
      return;
    }
    var observer = new IntersectionObserver(function (entries) {
      entries.forEach(function (entry) {
        if (entry.isIntersecting) {
          observer.unobserve(entry.target);
          draw(entry.target);
        }
      });
    }, { rootMargin: "300px 0px" });
    containers.forEach(function (container) { observer.observe(container); });
    // Printing or saving the page draws every chart.
    window.addEventListener("beforeprint", function () {
      containers.forEach(function (container) {
        if (!container.classList.contains("js-plotly-plot")) {
          observer.unobserve(container);
          draw(container);
        }
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
