// The dashboard's charts (web/dashboard): every <canvas data-chart="{...}"> is drawn with Chart.js.
//
// The server builds each chart's whole configuration (labels, datasets, colours, translated titles) and
// puts it in the data-chart attribute as JSON: no inline script under the CSP. Its extra key "unit" ('%' or
// '小时') is appended to axis ticks and tooltips here, since functions cannot travel in JSON. The table
// beside each chart holds the same figures, so a chart that fails to draw costs nothing but the picture.
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  Legend,
  LinearScale,
  Tooltip,
} from 'chart.js';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Legend, Tooltip);

const FALLBACK_ERROR = '图表加载失败，请参考表格中的数字。';
const reducedMotion = window.matchMedia('(prefers-reduced-motion: reduce)').matches;

function withUnit(unit) {
  return (value) => (value === null || value === undefined ? '—' : `${value}${unit === '%' ? '' : ' '}${unit}`);
}

function configure(raw) {
  const { unit = '', ...config } = raw;
  const options = config.options || {};
  const valueAxis = options.indexAxis === 'y' ? 'x' : 'y';
  const format = withUnit(unit);
  options.responsive = true;
  options.maintainAspectRatio = false;
  options.animation = reducedMotion ? false : { duration: 300 };
  options.scales = options.scales || {};
  // Counts have no unit: whole numbers only on their axis.
  const ticks = unit ? { callback: (value) => format(value) } : { precision: 0 };
  options.scales[valueAxis] = { ...(options.scales[valueAxis] || {}), ticks };
  options.plugins = {
    legend: { position: 'bottom' },
    tooltip: {
      callbacks: {
        label: (item) => `${item.dataset.label}: ${format(options.indexAxis === 'y' ? item.parsed.x : item.parsed.y)}`,
      },
    },
  };
  return { ...config, options };
}

function showError(canvas, error) {
  const figure = canvas.closest('.chart');
  const message = document.createElement('p');
  message.className = 'chart-error';
  message.setAttribute('role', 'status');
  message.textContent = (figure && figure.dataset.chartError) || FALLBACK_ERROR;
  if (figure) figure.classList.add('chart-failed');
  canvas.replaceWith(message);
  console.warn('chart:', error);
}

function draw(canvas) {
  try {
    const chart = new Chart(canvas, configure(JSON.parse(canvas.dataset.chart)));
    canvas.closest('.chart')?.classList.add('chart-ready');
    return chart;
  } catch (error) {
    showError(canvas, error);
    return null;
  }
}

function start() {
  document.querySelectorAll('canvas[data-chart]').forEach(draw);
}

if (document.readyState === 'loading') {
  document.addEventListener('DOMContentLoaded', start);
} else {
  start();
}
