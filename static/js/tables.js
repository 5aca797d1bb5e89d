/* Sortable and filterable tables, without a library.

   Sorting: <table data-sortable> with <button class="sort" data-type="number|text">
   inside each <th>. Buttons are focusable and work with Enter and Space; the header's
   aria-sort says the current order. A cell's data-sort attribute, when present, is the
   value sorted on (empty values always go last).

   Filtering: <form data-filter-for="TABLE_ID"> with controls carrying
   data-filter="search" (matches the row's data-name) or data-filter="NAME" (equals the
   row's data-NAME). [data-filter-count] announces how many rows are shown. */
(function () {
  "use strict";

  function cellValue(row, index, type) {
    var cell = row.children[index];
    if (!cell) { return null; }
    var raw = cell.hasAttribute("data-sort") ? cell.getAttribute("data-sort") : cell.textContent.trim();
    if (raw === "") { return null; }
    if (type === "number") {
      var number = parseFloat(raw);
      return isNaN(number) ? null : number;
    }
    return raw.toLowerCase();
  }

  function sortBy(table, header, button) {
    var headers = header.parentNode.children;
    var index = Array.prototype.indexOf.call(headers, header);
    var type = button.getAttribute("data-type") || "text";
    var current = header.getAttribute("aria-sort");
    // Numbers start with the highest first (the riskiest), text with A.
    var descending = current === "none" || current === null ? type === "number" : current === "ascending";
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = cellValue(a, index, type);
      var y = cellValue(b, index, type);
      if (x === null && y === null) { return 0; }
      if (x === null) { return 1; }
      if (y === null) { return -1; }
      var order = x < y ? -1 : x > y ? 1 : 0;
      return descending ? -order : order;
    });
    rows.forEach(function (row) { body.appendChild(row); });
    for (var i = 0; i < headers.length; i++) { headers[i].setAttribute("aria-sort", "none"); }
    header.setAttribute("aria-sort", descending ? "descending" : "ascending");
  }

  function setUpSorting(table) {
    var buttons = table.querySelectorAll("thead button.sort");
    Array.prototype.forEach.call(buttons, function (button) {
      button.addEventListener("click", function () {
        sortBy(table, button.closest("th"), button);
      });
    });
  }

  function setUpFilters(form) {
    var table = document.getElementById(form.getAttribute("data-filter-for"));
    if (!table) { return; }
    var controls = form.querySelectorAll("[data-filter]");
    var counter = form.querySelector("[data-filter-count]");
    var rows = Array.prototype.slice.call(table.tBodies[0].rows);

    function apply() {
      var shown = 0;
      rows.forEach(function (row) {
        var visible = true;
        Array.prototype.forEach.call(controls, function (control) {
          var name = control.getAttribute("data-filter");
          var wanted = control.value.trim().toLowerCase();
          if (!wanted) { return; }
          if (name === "search") {
            visible = visible && (row.getAttribute("data-name") || "").indexOf(wanted) !== -1;
          } else {
            visible = visible && (row.getAttribute("data-" + name) || "").toLowerCase() === wanted;
          }
        });
        row.hidden = !visible;
        if (visible) { shown += 1; }
      });
      if (counter) {
        counter.textContent = "Showing " + shown + " of " + rows.length + " countries.";
      }
    }

    Array.prototype.forEach.call(controls, function (control) {
      control.addEventListener("input", apply);
      control.addEventListener("change", apply);
    });
    form.addEventListener("submit", function (event) { event.preventDefault(); apply(); });
    apply();
  }

  // <p class="scroll-hint" data-scroll-hint-for="TABLE_ID"> shows while the table is
  // wider than its scrolling box (a phone), and goes once the reader has scrolled.
  function setUpScrollHint(hint) {
    var table = document.getElementById(hint.getAttribute("data-scroll-hint-for"));
    var box = table && table.closest(".table-wrap");
    if (!box) { return; }
    function update() {
      var more = box.scrollWidth - box.clientWidth - box.scrollLeft > 4;
      hint.classList.toggle("visible", more);
    }
    box.addEventListener("scroll", update, { passive: true });
    window.addEventListener("resize", update);
    update();
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("table[data-sortable]"), setUpSorting);
    Array.prototype.forEach.call(document.querySelectorAll("form[data-filter-for]"), setUpFilters);
    Array.prototype.forEach.call(document.querySelectorAll("[data-scroll-hint-for]"), setUpScrollHint);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
