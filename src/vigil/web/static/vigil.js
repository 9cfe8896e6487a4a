// Vigil: the few behaviours of the server-rendered pages. The CSP allows no inline script, so they live here.
(function () {
  "use strict";

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // Every HTMX request carries the session's CSRF token as X-CSRF-Token (htmx 2 and htmx 4 event names).
  document.addEventListener("htmx:configRequest", function (event) {
    var token = csrfToken();
    if (token && event.detail && event.detail.headers) { event.detail.headers["X-CSRF-Token"] = token; }
  });
  document.addEventListener("htmx:config:request", function (event) {
    var token = csrfToken();
    var ctx = event.detail && event.detail.ctx;
    if (token && ctx && ctx.request && ctx.request.headers) { ctx.request.headers["X-CSRF-Token"] = token; }
  });

  // <form data-confirm="question">: ask before sending (revoke, disable, reset).
  document.addEventListener("submit", function (event) {
    var form = event.target;
    var question = form && form.getAttribute && form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) {
      event.preventDefault();
      event.stopImmediatePropagation();
    }
  }, true);

  // <button data-copy="element-id" data-copied="Copied">: copy that element's text (a new token).
  document.addEventListener("click", function (event) {
    var button = event.target.closest && event.target.closest("[data-copy]");
    if (!button) { return; }
    var source = document.getElementById(button.getAttribute("data-copy"));
    if (!source || !navigator.clipboard) { return; }
    navigator.clipboard.writeText(source.textContent.trim()).then(function () {
      button.textContent = button.getAttribute("data-copied") || button.textContent;
    });
  });
})();
