/* Draws every Plotly figure on the page. A container names the id of the JSON script
   (Django's json_script) holding the figure: <div data-figure="trend-figure">.
   Plotly itself comes from our static files; so does the world map's geometry, via
   data-topojson, so nothing is fetched from a CDN. */
(function () {
  "use strict";

  function draw(container) {
    var source = document.getElementById(container.getAttribute("data-figure"));
    if (!source || !window.Plotly) { return; }
    var figure = JSON.parse(source.textContent);
    var config = { responsive: true, displaylogo: false };
    var topojson = container.getAttribute("data-topojson");
    if (topojson) { config.topojsonURL = topojson; }
    window.Plotly.newPlot(container, figure.data, figure.layout, config);
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
