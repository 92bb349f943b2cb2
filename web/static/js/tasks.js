// The to-do list's 全选本页: ticking it ticks every row (the server selects the whole page from it even
// without this script); a row unticked clears it again. The number selected is announced beside it.
document.addEventListener('DOMContentLoaded', function () {
  var all = document.querySelector('[data-select-all]');
  var rows = Array.prototype.slice.call(document.querySelectorAll('[data-row-select]'));
  var counter = document.querySelector('[data-selected-count]');
  if (!all || !rows.length) { return; }

  function update() {
    var ticked = rows.filter(function (box) { return box.checked; }).length;
    all.checked = ticked === rows.length;
    all.indeterminate = ticked > 0 && ticked < rows.length;
    if (counter) {
      counter.textContent = ticked ? (counter.getAttribute('data-template') || '已选 {n} 项').replace('{n}', ticked) : '';
    }
  }

  all.addEventListener('change', function () {
    rows.forEach(function (box) { box.checked = all.checked; });
    update();
  });
  rows.forEach(function (box) { box.addEventListener('change', update); });
  update();
});

// For a supervisor or a county officer the tabs over the whole reach are counted after the page: the server
// leaves them as "…" and names the counts endpoint (the same filters); a failed request leaves them so.
document.addEventListener('DOMContentLoaded', function () {
  var nav = document.querySelector('[data-counts-url]');
  if (!nav || !window.fetch) { return; }
  var cap = parseInt(nav.getAttribute('data-count-cap'), 10);
  fetch(nav.getAttribute('data-counts-url'), {credentials: 'same-origin', headers: {Accept: 'application/json'}})
    .then(function (response) { return response.ok ? response.json() : null; })
    .then(function (body) {
      if (!body || !body.counts) { return; }
      Array.prototype.forEach.call(nav.querySelectorAll('[data-view]'), function (span) {
        var count = body.counts[span.getAttribute('data-view')];
        if (typeof count !== 'number') { return; }
        span.textContent = count > cap ? cap + '+' : String(count);
        var tab = span.closest('[data-alert]');
        if (tab && count > 0) { tab.classList.add('tab-alert'); }
      });
    })
    .catch(function () {});
});
