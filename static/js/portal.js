/* The portal's own few lines of script (issue 24): every state-changing form is sent once.
 *
 * - Each POST form gets a hidden one-time submission key ("_submission") when it appears on
 *   the page; a double tap or a retry sends the same key, and the server answers the repeat
 *   with the first submission's result (portal/submissions.py).  An htmx request sends its
 *   form's key (or its element's) as the X-Submission-Key header too.
 * - htmx forms disable their buttons while their request is in flight (hx-disabled-elt,
 *   "find button" unless the form names its own); plain forms disable their submit buttons
 *   once the browser has taken the form's values, until the next page (or back) shows.
 */
(function () {
  "use strict";
  var FIELD = "_submission";
  var POSTING = "form[method=post], form[method=POST]";
  var HTMX_WRITE = "[hx-post], [hx-put], [hx-patch], [hx-delete]";

  function newKey() {
    if (window.crypto && window.crypto.randomUUID) {
      return window.crypto.randomUUID();
    }
    var bytes = new Uint8Array(16);
    window.crypto.getRandomValues(bytes);
    return Array.prototype.map.call(bytes, function (b) { return ("0" + b.toString(16)).slice(-2); }).join("");
  }

  function each(root, selector, fn) {
    if (root.matches && root.matches(selector)) { fn(root); }
    if (root.querySelectorAll) { Array.prototype.forEach.call(root.querySelectorAll(selector), fn); }
  }

  function keyInput(form) {
    var input = form.querySelector("input[name=" + FIELD + "]");
    if (!input) {
      input = document.createElement("input");
      input.type = "hidden";
      input.name = FIELD;
      form.appendChild(input);
    }
    return input;
  }

  function prepare(root) {
    each(root, POSTING, function (form) {
      var input = keyInput(form);
      if (!input.value) { input.value = newKey(); }
    });
    each(root, HTMX_WRITE, function (elt) {
      if (!elt.hasAttribute("hx-disabled-elt")) {
        elt.setAttribute("hx-disabled-elt", elt.tagName === "FORM" ? "find button" : "this");
      }
    });
  }

  document.addEventListener("DOMContentLoaded", function () { prepare(document.body); });
  document.addEventListener("htmx:load", function (event) { prepare(event.detail.elt); });

  document.addEventListener("htmx:configRequest", function (event) {
    var elt = event.detail.elt;
    if (event.detail.verb === "get" || !elt || !elt.closest) { return; }
    var form = elt.closest("form");
    var key = form ? keyInput(form).value : (elt.dataset.submission || (elt.dataset.submission = newKey()));
    if (form && !key) { key = keyInput(form).value = newKey(); }
    event.detail.headers["X-Submission-Key"] = key;
  });

  // the request is answered: the form (if it is still on the page) is a new submission now
  document.addEventListener("htmx:afterRequest", function (event) {
    var elt = event.detail.elt;
    if (!elt || !elt.isConnected || !elt.closest) { return; }
    var form = elt.closest("form");
    if (form) { keyInput(form).value = newKey(); } else if (elt.dataset.submission) { elt.dataset.submission = newKey(); }
  });

  document.addEventListener("submit", function (event) {
    var form = event.target;
    if (event.defaultPrevented || !form.matches(POSTING) || form.matches(HTMX_WRITE)) { return; }
    // after the browser took the values (a disabled button would drop its name=value)
    window.setTimeout(function () {
      each(form, "button[type=submit], button:not([type]), input[type=submit]", function (button) {
        button.disabled = true;
        button.setAttribute("data-disabled-in-flight", "");
      });
    }, 0);
    window.setTimeout(function () { enable(form); }, 20000);  // no answer: let the person try again
  });

  function enable(root) {
    each(root, "[data-disabled-in-flight]", function (button) {
      button.disabled = false;
      button.removeAttribute("data-disabled-in-flight");
    });
  }

  // back to a page kept in the browser's cache: its buttons work again
  window.addEventListener("pageshow", function (event) {
    if (event.persisted) { enable(document.body); }
  });
}());
