// MCP Settings: the little behaviour htmx attributes cannot express.
// No inline scripts anywhere (CSP); everything is wired here by data-*
// attributes, and every page still works without this file.
//
// The Add dialog's probe rules (seed-behaviour.md §6.4, §10.3 item 26):
// - htmx fires the probe 700 ms after the last edit, on blur and on Enter;
// - every edit of URL, token or transport bumps a generation number and
//   clears a shown result and the spinner at once; an answer whose
//   generation is no longer the form's is dropped, never shown;
// - nothing is sent or shown once the dialog is closed.
(function () {
  "use strict";

  function dialogOf(el) {
    return el && el.closest("dialog");
  }

  function form() {
    return document.getElementById("add-form");
  }

  function probeArea() {
    return document.getElementById("probe-area");
  }

  function bumpGeneration() {
    var input = form() && form().querySelector("[data-generation]");
    if (input) input.value = String(Number(input.value || "0") + 1);
  }

  function abortProbes() {
    var f = form();
    if (!f || !window.htmx) return;
    f.querySelectorAll("[data-probe-field]").forEach(function (field) {
      htmx.trigger(field, "htmx:abort");
    });
    htmx.trigger(f, "htmx:abort");
  }

  // Back to "nothing checked yet": result, spinner and primary button.
  function resetProbeArea() {
    var area = probeArea();
    if (!area) return;
    area.classList.remove("htmx-request");
    area.dataset.nextAction = "";
    area.querySelectorAll(".probe-result, input[type=hidden]").forEach(function (el) {
      el.remove();
    });
    if (!area.querySelector(".probe-idle")) {
      var idle = document.createElement("p");
      idle.className = "probe-idle muted";
      idle.textContent = "Checking again after you stop typing…";
      area.insertBefore(idle, area.querySelector(".dialog-actions"));
    }
    var primary = area.querySelector("[data-primary]");
    if (primary) {
      primary.disabled = true;
      primary.name = "action";
      primary.value = "add";
      primary.textContent = "Add server";
    }
  }

  function clearDialogError() {
    var box = document.getElementById("dialog-error");
    if (box) {
      box.innerHTML = "";
      box.hidden = true;
    }
  }

  function newSubmissionId() {
    var input = form() && form().querySelector("[data-submission]");
    if (!input) return;
    input.value = window.crypto && crypto.randomUUID
      ? crypto.randomUUID()
      : String(Date.now()) + Math.random().toString(16).slice(2);
  }

  function openDialog(id) {
    var dialog = document.getElementById(id);
    if (!dialog || typeof dialog.showModal !== "function") return false;
    newSubmissionId();
    dialog.showModal();
    var first = dialog.querySelector("input[type=text]");
    if (first) first.focus();
    return true;
  }

  function resetDialog(dialog) {
    bumpGeneration();
    abortProbes();
    var f = dialog.querySelector("form");
    if (f) {
      f.querySelectorAll("[data-probe-field]").forEach(function (field) {
        delete field.dataset.probedValue;
      });
      var generation = f.querySelector("[data-generation]").value;
      f.reset();
      f.querySelector("[data-generation]").value = generation;
    }
    resetProbeArea();
    var idle = dialog.querySelector(".probe-idle");
    if (idle) idle.textContent = "Type the server's URL: it is checked as you type.";
    clearDialogError();
  }

  document.addEventListener("click", function (event) {
    var opener = event.target.closest("[data-open-dialog]");
    if (opener && openDialog(opener.dataset.openDialog)) {
      event.preventDefault();
      return;
    }
    var closer = event.target.closest("[data-close-dialog]");
    if (closer) {
      var dialog = dialogOf(closer);
      if (dialog) dialog.close();
      return;
    }
    var copy = event.target.closest("[data-copy]");
    if (copy && navigator.clipboard) {
      navigator.clipboard.writeText(copy.dataset.copy).then(function () {
        var label = copy.textContent;
        copy.textContent = "Copied";
        setTimeout(function () { copy.textContent = label; }, 2000);
      });
    }
  });

  // Escape, the ✕ button, Cancel and a successful submit all end here.
  document.addEventListener("close", function (event) {
    if (event.target.id === "add-dialog") resetDialog(event.target);
  }, true);

  // Edits invalidate what is shown. Renaming does not (seed #1008).
  document.addEventListener("input", function (event) {
    if (event.target.matches("#add-form [data-probe-field]")) {
      bumpGeneration();
      abortProbes();
      resetProbeArea();
      clearDialogError();
    }
  });
  document.addEventListener("change", function (event) {
    if (event.target.matches("#add-form select[data-probe-field]")) {
      bumpGeneration();
      abortProbes();
      resetProbeArea();
    }
  });

  // Enter in the URL or token field follows the result: add, authorize, or
  // check now.
  document.addEventListener("keydown", function (event) {
    if (event.key !== "Enter" || !event.target.matches("#add-form [data-probe-field]")) return;
    event.preventDefault();
    var area = probeArea();
    var primary = area && area.querySelector("[data-primary]");
    if (area && area.dataset.nextAction && primary && !primary.disabled) {
      primary.click();
    } else if (window.htmx) {
      htmx.trigger(event.target, "probe-now");
    }
  });

  // Leaving a field probes at once, unless that value was already probed.
  document.addEventListener("focusout", function (event) {
    var field = event.target;
    if (!field.matches || !field.matches("#add-form input[data-probe-field]")) return;
    // Leaving for Cancel or ✕ abandons the URL: no probe for it.
    var next = event.relatedTarget;
    if (next && next.closest && next.closest("[data-close-dialog]")) return;
    if (field.value && field.value !== field.dataset.probedValue && window.htmx) {
      htmx.trigger(field, "probe-now");
    }
  });

  function isProbe(detail) {
    return detail.path && detail.path.indexOf("/probe/") !== -1;
  }

  document.addEventListener("htmx:configRequest", function (event) {
    var dialog = dialogOf(event.detail.elt);
    // A debounce timer may still fire after the dialog closed: send nothing.
    if (dialog && !dialog.open) {
      event.preventDefault();
      return;
    }
    if (isProbe(event.detail)) {
      clearDialogError();
      form().querySelectorAll("input[data-probe-field]").forEach(function (field) {
        field.dataset.probedValue = field.value;
      });
      // No acting on the previous answer while a new one is on its way.
      var primary = probeArea() && probeArea().querySelector("[data-primary]");
      if (primary) primary.disabled = true;
    }
  });

  document.addEventListener("htmx:beforeSwap", function (event) {
    var xhr = event.detail.xhr;
    var sent = xhr && xhr.getResponseHeader("X-Probe-Generation");
    if (sent === null || sent === undefined) return;
    var dialog = document.getElementById("add-dialog");
    var current = form() && form().querySelector("[data-generation]").value;
    if (sent !== current || (dialog && !dialog.open)) {
      event.detail.shouldSwap = false;
    }
  });

  // After an error, put focus where the words are.
  document.addEventListener("htmx:afterSwap", function (event) {
    var box = document.getElementById("dialog-error");
    if (box && event.detail.target === box && box.textContent.trim()) box.focus();
  });
  document.addEventListener("htmx:afterSettle", function (event) {
    var box = document.getElementById("dialog-error");
    if (box && box.textContent.trim() && box.contains(event.detail.elt)) box.focus();
  });
})();
