// The 打印 button of a document page: shown only when scripts run (otherwise the browser's own print command
// works the same, with the print stylesheet).
document.addEventListener('DOMContentLoaded', function () {
  document.querySelectorAll('[data-print]').forEach(function (button) {
    button.hidden = false;
    button.addEventListener('click', function () { window.print(); });
  });
});
