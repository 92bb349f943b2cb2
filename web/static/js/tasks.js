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
