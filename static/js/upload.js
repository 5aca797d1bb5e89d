// The upload form refuses a file over the size limit before sending it: the server would
// refuse it unread, and a browser may show a refused upload as a broken connection.
(function () {
  "use strict";
  var form = document.getElementById("upload-form");
  if (!form) { return; }
  var input = form.querySelector("input[type=file]");
  var message = document.getElementById("upload-size-error");
  var limit = Number(form.dataset.maxBytes);
  function tooLarge() {
    var file = input && input.files && input.files[0];
    return Boolean(file && limit && file.size > limit);
  }
  function show() {
    var refuse = tooLarge();
    message.hidden = !refuse;
    message.textContent = refuse
      ? "The file is larger than " + form.dataset.maxSize + "; split it into smaller files."
      : "";
    if (input) { input.setAttribute("aria-invalid", refuse ? "true" : "false"); }
    return refuse;
  }
  if (input) { input.addEventListener("change", show); }
  form.addEventListener("submit", function (event) {
    if (show()) { event.preventDefault(); }
  });
})();
