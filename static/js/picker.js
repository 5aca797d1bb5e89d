/* Searchable pickers for long lists: <select multiple data-picker> (countries to
   compare, countries and regions of a subscription) becomes a type-to-search picker
   with Tom Select, from our own static files. The select keeps its name, label and
   form, so the form posts as before, and works as a plain list without JavaScript.
   data-max-items caps how many can be chosen. */
(function () {
  "use strict";

  function enhance(select) {
    if (!window.TomSelect || select.tomselect) { return; }
    var max = parseInt(select.getAttribute("data-max-items") || "0", 10);
    var picker = new window.TomSelect(select, {
      plugins: { remove_button: { title: "Remove this one" } },
      maxItems: max > 0 ? max : null,
      maxOptions: null,
      hideSelected: true,
      closeAfterSelect: true,
      searchField: ["text", "value"],
      placeholder: select.getAttribute("data-placeholder") || "Type to search",
      render: {
        no_results: function () { return '<div class="no-results">No match</div>'; }
      }
    });
    // The typing box is what a screen reader lands on: name it like the list.
    var label = select.id && document.querySelector('label[for="' + select.id + '"]');
    var input = picker.control_input;
    if (label && input) {
      input.setAttribute("aria-label", label.textContent.trim());
    }
    var help = select.getAttribute("aria-describedby") ||
      (document.getElementById(select.id + "_helptext") && select.id + "_helptext");
    if (help && input) { input.setAttribute("aria-describedby", help); }
    // The original list stays in the form (it is what is posted), out of reach of the
    // keyboard; the picker speaks for it.
    select.setAttribute("aria-hidden", "true");
  }

  function init() {
    Array.prototype.forEach.call(document.querySelectorAll("select[data-picker]"), enhance);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
