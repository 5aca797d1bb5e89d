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

  function draw(container) {
    var figure = readJSON(container.getAttribute("data-figure"));
    if (!figure || !window.Plotly) { return; }
    var layout = figure.layout || {};
    addMarkers(layout, readJSON(container.getAttribute("data-markers")));
    // A world map is wider than tall: keep its height in proportion to the width.
    if (layout.geo && container.clientWidth) {
      layout.height = Math.min(420, Math.max(180, Math.round(container.clientWidth * 0.42)));
    }
    // On a phone, fewer date ticks: a dozen tilted labels would overlap each other.
    if (layout.xaxis && layout.xaxis.type === "date" && container.clientWidth < 520) {
      layout.xaxis.nticks = 4;
    }
    var config = { responsive: true, displaylogo: false };
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

  function drawAll() {
    var containers = document.querySelectorAll("[data-figure]");
    for (var i = 0; i < containers.length; i++) { draw(containers[i]); }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", drawAll);
  } else {
    drawAll();
  }
})();
