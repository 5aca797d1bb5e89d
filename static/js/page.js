/* What every page needs, without a library.

   - A form's error summary ([data-error-summary], or a form's role="alert" error box)
     takes the focus when the page opens: a screen reader says what went wrong, and a
     keyboard is where the fixing starts (each item links to its field).
   - A table wider than its box (.table-wrap on a phone) can be scrolled from the
     keyboard: it becomes a focusable region named after the table's caption. */
(function () {
  "use strict";

  function focusErrorSummary() {
    var summary = document.querySelector("[data-error-summary]") ||
      document.querySelector("form .form-errors[role=alert], .form-errors[role=alert]");
    if (!summary) { return; }
    if (!summary.hasAttribute("tabindex")) { summary.setAttribute("tabindex", "-1"); }
    summary.focus();
  }

  // The table's caption, else the heading of the part of the page it is in.
  function tableName(box) {
    var caption = box.querySelector("caption");
    if (caption && caption.textContent.trim()) { return caption.textContent.trim(); }
    var part = box.closest("section, details, .card");
    var heading = part && part.querySelector("h2, h3, summary");
    return (heading ? heading.textContent.trim().replace(/\s+/g, " ") + ": table" : "Table");
  }

  function scrollableTables() {
    var names = {};
    Array.prototype.forEach.call(document.querySelectorAll(".table-wrap"), function (box) {
      var scrolls = box.scrollWidth > box.clientWidth + 1;
      if (scrolls && !box.hasAttribute("tabindex")) {
        var name = tableName(box);
        names[name] = (names[name] || 0) + 1;
        if (names[name] > 1) { name += " (" + names[name] + ")"; }
        box.setAttribute("tabindex", "0");
        box.setAttribute("role", "region");
        box.setAttribute("aria-label", name + ", scrolls sideways");
        box.setAttribute("data-made-focusable", "");
      } else if (!scrolls && box.hasAttribute("data-made-focusable")) {
        ["tabindex", "role", "aria-label", "data-made-focusable"].forEach(function (name) {
          box.removeAttribute(name);
        });
      }
    });
  }

  function init() {
    focusErrorSummary();
    scrollableTables();
    window.addEventListener("resize", scrollableTables);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
