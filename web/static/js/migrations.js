// 迁移在办实例. The preview: 全选 ticks every instance that can move, and the number ticked is announced.
// A batch page: the counts and each instance's result are updated in place as the batch runs
// (batch-progress.js polls the endpoint named in data-progress-url).
(function () {
  'use strict';

  var batch = window.fengqiaoBatch;

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

  function showItem(item) {
    var row = document.querySelector('[data-item-id="' + item.id + '"]');
    if (!row) { return; }
    var badge = row.querySelector('[data-item-status]');
    if (badge) {
      badge.textContent = item.status_label;
      badge.className = 'badge' + ({ migrated: ' badge-done', failed: ' badge-danger', skipped: ' badge-warn' }[item.status] || '');
    }
    batch.setText(row, '[data-item-message]', item.message || '');
    batch.setText(row, '[data-item-finished]', item.finished || '');
  }

  function show(panel, progress) {
    batch.showSummary(panel, progress, ['total', 'migrated', 'failed', 'skipped', 'pending']);
    progress.items.forEach(showItem);
  }

  document.addEventListener('DOMContentLoaded', function () {
    setUpSelectAll();
    batch.follow('data-progress-url', show);
  });
}());
