// The progress of a batch the worker runs (迁移批次, 批量导入): fetched every two seconds from the JSON endpoint
// the panel names, handed to the page's own renderer, until the batch is done. Loaded before the page's script.
(function () {
  'use strict';

  var POLL_MS = 2000;

  function setText(root, selector, text) {
    var element = root.querySelector(selector);
    if (element && element.textContent !== String(text)) { element.textContent = text; }
  }

  // The parts every batch page has: its counts, its status, its progress bar and the "refresh" hint.
  function showSummary(panel, progress, counts) {
    counts.forEach(function (name) { setText(panel, '[data-count="' + name + '"]', progress[name]); });
    setText(panel, '[data-batch-status]', progress.status_label);
    var bar = panel.querySelector('[data-progress-bar]');
    if (bar) {
      bar.max = progress.total || 1;
      bar.value = progress.total - progress.pending;
      bar.textContent = (progress.total - progress.pending) + ' / ' + progress.total;
    }
    if (progress.done) {
      panel.setAttribute('data-done', 'true');
      var hint = panel.querySelector('[data-refresh-hint]');
      if (hint) { hint.hidden = true; }
    }
  }

  // Poll the endpoint in the panel's ``urlAttribute`` and call ``render(panel, progress)`` with each answer.
  function follow(urlAttribute, render) {
    var panel = document.querySelector('[' + urlAttribute + ']');
    if (!panel || panel.getAttribute('data-done') === 'true') { return; }
    var url = panel.getAttribute(urlAttribute);

    function poll() {
      fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' }, cache: 'no-store' })
        .then(function (response) {
          if (!response.ok) { throw new Error('HTTP ' + response.status); }
          return response.json();
        })
        .then(function (progress) {
          render(panel, progress);
          if (!progress.done) { window.setTimeout(poll, POLL_MS); }
        })
        .catch(function () { window.setTimeout(poll, POLL_MS * 3); });  // a hiccup: try again, more slowly
    }

    window.setTimeout(poll, POLL_MS);
  }

  window.fengqiaoBatch = { follow: follow, setText: setText, showSummary: showSummary };
}());
