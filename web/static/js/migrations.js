// 迁移在办实例. The preview: 全选 ticks every instance that can move, and the number ticked is announced.
// A batch page: its progress is fetched from the JSON endpoint named in data-progress-url every two seconds,
// and the counts and each instance's result are updated in place, until every instance has settled.
(function () {
  'use strict';

  var POLL_MS = 2000;

  function setUpSelectAll() {
    var all = document.querySelector('[data-select-all]');
    var rows = Array.prototype.slice.call(document.querySelectorAll('[data-row-select]:not(:disabled)'));
    var counter = document.querySelector('[data-selected-count]');
    if (!all) { return; }
    if (!rows.length) { all.disabled = true; return; }

    function update() {
      var ticked = rows.filter(function (box) { return box.checked; }).length;
      all.checked = ticked === rows.length;
      all.indeterminate = ticked > 0 && ticked < rows.length;
      if (counter) {
        counter.textContent = ticked ? (counter.getAttribute('data-template') || '{n}').replace('{n}', ticked) : '';
      }
    }

    all.addEventListener('change', function () {
      rows.forEach(function (box) { box.checked = all.checked; });
      update();
    });
    rows.forEach(function (box) { box.addEventListener('change', update); });
    update();
  }

  function setText(root, selector, text) {
    var element = root.querySelector(selector);
    if (element && element.textContent !== String(text)) { element.textContent = text; }
  }

  function showItem(item) {
    var row = document.querySelector('[data-item-id="' + item.id + '"]');
    if (!row) { return; }
    var badge = row.querySelector('[data-item-status]');
    if (badge) {
      badge.textContent = item.status_label;
      badge.className = 'badge' + ({ migrated: ' badge-done', failed: ' badge-danger', skipped: ' badge-warn' }[item.status] || '');
    }
    setText(row, '[data-item-message]', item.message || '');
    setText(row, '[data-item-finished]', item.finished || '');
  }

  function show(panel, progress) {
    ['total', 'migrated', 'failed', 'skipped', 'pending'].forEach(function (name) {
      setText(panel, '[data-count="' + name + '"]', progress[name]);
    });
    setText(panel, '[data-batch-status]', progress.status_label);
    var bar = panel.querySelector('[data-progress-bar]');
    if (bar) {
      bar.max = progress.total || 1;
      bar.value = progress.total - progress.pending;
    }
    progress.items.forEach(showItem);
    if (progress.done) {
      panel.setAttribute('data-done', 'true');
      var hint = panel.querySelector('[data-refresh-hint]');
      if (hint) { hint.hidden = true; }
    }
  }

  function setUpProgress() {
    var panel = document.querySelector('[data-progress-url]');
    if (!panel || panel.getAttribute('data-done') === 'true') { return; }
    var url = panel.getAttribute('data-progress-url');

    function poll() {
      fetch(url, { credentials: 'same-origin', headers: { Accept: 'application/json' }, cache: 'no-store' })
        .then(function (response) {
          if (!response.ok) { throw new Error('HTTP ' + response.status); }
          return response.json();
        })
        .then(function (progress) {
          show(panel, progress);
          if (!progress.done) { window.setTimeout(poll, POLL_MS); }
        })
        .catch(function () { window.setTimeout(poll, POLL_MS * 3); });  // a hiccup: try again, more slowly
    }

    window.setTimeout(poll, POLL_MS);
  }

  document.addEventListener('DOMContentLoaded', function () {
    setUpSelectAll();
    setUpProgress();
  });
}());
