// 批量导入. A batch page: the progress bar, the counts and each row's result are updated in place as the
// batch runs (batch-progress.js polls the endpoint named in data-import-progress-url). The dry-run page:
// the confirm button is disabled once pressed.
(function () {
  'use strict';

  var batch = window.fengqiaoBatch;

  function showRow(row) {
    var line = document.querySelector('[data-row-id="' + row.id + '"]');
    if (!line) { return; }
    var badge = line.querySelector('[data-row-status]');
    if (badge) {
      badge.textContent = row.status_label;
      badge.className = 'badge' + ({ imported: ' badge-done', failed: ' badge-danger' }[row.status] || '');
    }
    batch.setText(line, '[data-row-message]', row.message || '');
    var link = line.querySelector('[data-row-case]');
    if (link && row.case_url) {
      link.setAttribute('href', row.case_url);
      link.hidden = false;
    }
  }

  function show(panel, progress) {
    batch.showSummary(panel, progress, ['total', 'imported', 'failed', 'pending']);
    progress.rows.forEach(showRow);
  }

  function setUpConfirm() {
    var button = document.querySelector('[data-start-import]');
    if (!button || !button.form) { return; }
    button.form.addEventListener('submit', function () { button.disabled = true; });
  }

  document.addEventListener('DOMContentLoaded', function () {
    batch.follow('data-import-progress-url', show);
    setUpConfirm();
  });
}());
