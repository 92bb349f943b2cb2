// What the BPMN modeler and the DMN editor pages share: the draft's save / validate / deploy cycle
// against the server, the validation report, messages, downloads.
//
// Every text shown comes from the page's data-msg-* attributes (translated with the page); the
// endpoints from data-*-url attributes. JSON writes carry the CSRF token in the X-CSRFToken header.

const STYLE_ATTRIBUTE = /\sstyle=(?:"([^"]*)"|'([^']*)')/g;

/**
 * Let the editors' own markup keep its inline styles under our CSP, which refuses style attributes.
 *
 * The properties panel (its container's ``style="height: 100%"``) and dmn-js (drag images, the bpmn.io
 * notice) build DOM from HTML strings with style attributes; the browser would drop each one and report a
 * CSP violation. Here such strings are parsed with the attribute renamed and the style is then applied
 * through the CSSOM (``element.style.cssText``), which the CSP allows: the page looks as the libraries
 * intend and the policy stays as strict as everywhere else. Only this page's bundles install it.
 */
export function applyLibraryStylesThroughCSSOM() {
  const descriptor = Object.getOwnPropertyDescriptor(Element.prototype, 'innerHTML');
  if (!descriptor || descriptor.set.fengqiaoPatched) return;
  const set = function innerHTML(value) {
    const html = String(value);
    if (!html.includes('style=')) {
      descriptor.set.call(this, value);
      return;
    }
    descriptor.set.call(this, html.replace(STYLE_ATTRIBUTE, (whole, double, single) => {
      const css = double !== undefined ? double : single;
      return ` data-cssom-style="${css.replace(/"/g, '&quot;')}"`;
    }));
    for (const node of this.querySelectorAll('[data-cssom-style]')) {
      node.style.cssText = node.getAttribute('data-cssom-style');
      node.removeAttribute('data-cssom-style');
    }
  };
  set.fengqiaoPatched = true;
  Object.defineProperty(Element.prototype, 'innerHTML', { ...descriptor, set });
}

/** The page's translated text for ``name`` (data-msg-<name>), or ``fallback``. */
export function message(root, name, fallback = '') {
  const key = `msg${name.charAt(0).toUpperCase()}${name.slice(1)}`;
  return root.dataset[key] || fallback;
}

/** Replace {name} placeholders in a translated text. */
export function fill(text, values) {
  return text.replace(/\{(\w+)\}/g, (whole, name) => (name in values ? String(values[name]) : whole));
}

/** A JSON request to the server; resolves to {status, body} (body null when it is not JSON). */
export async function request(root, url, { method = 'GET', body } = {}) {
  const headers = { Accept: 'application/json' };
  if (method !== 'GET') {
    headers['Content-Type'] = 'application/json';
    headers['X-CSRFToken'] = root.dataset.csrfToken;
  }
  const response = await fetch(url, {
    method,
    headers,
    credentials: 'same-origin',
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  let data = null;
  if ((response.headers.get('Content-Type') || '').includes('application/json')) {
    data = await response.json();
  }
  return { status: response.status, body: data };
}

/** Offer ``content`` (a string or Blob) as a file download. */
export function download(content, filename, type) {
  const blob = content instanceof Blob ? content : new Blob([content], { type });
  const url = URL.createObjectURL(blob);
  const link = document.createElement('a');
  link.href = url;
  link.download = filename;
  link.hidden = true;
  document.body.appendChild(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
}

/** Draw an SVG document on a canvas (white background) and resolve to a PNG Blob. */
export function svgToPng(svg, scale = 2) {
  return new Promise((resolve, reject) => {
    const image = new Image();
    image.onload = () => {
      const canvas = document.createElement('canvas');
      canvas.width = Math.ceil(image.naturalWidth * scale);
      canvas.height = Math.ceil(image.naturalHeight * scale);
      const context = canvas.getContext('2d');
      context.fillStyle = '#ffffff';
      context.fillRect(0, 0, canvas.width, canvas.height);
      context.drawImage(image, 0, 0, canvas.width, canvas.height);
      canvas.toBlob((blob) => (blob ? resolve(blob) : reject(new Error('canvas.toBlob failed'))), 'image/png');
    };
    image.onerror = () => reject(new Error('the SVG could not be drawn'));
    // A data: URL: the CSP allows data: images, and a data: SVG does not taint the canvas.
    image.src = `data:image/svg+xml;charset=utf-8,${encodeURIComponent(svg)}`;
  });
}

/** The status line under the toolbar: ``kind`` is info, success, warning or error. */
export function status(root, text, kind = 'info') {
  const line = root.querySelector('[data-role=status]');
  if (!line) return;
  line.textContent = text;
  line.dataset.kind = kind;
}

/** Show a problem that keeps the editor from working (import failure), with its details. */
export function showFailure(root, title, details) {
  const box = root.querySelector('[data-role=failure]');
  box.replaceChildren();
  const heading = document.createElement('p');
  heading.className = 'designer-failure-title';
  heading.textContent = title;
  box.appendChild(heading);
  if (details.length) {
    const list = document.createElement('ul');
    for (const detail of details) {
      const item = document.createElement('li');
      item.textContent = detail;
      list.appendChild(item);
    }
    box.appendChild(list);
  }
  box.hidden = false;
}

/** The import warnings of bpmn-js / dmn-js as lines a designer can read. */
export function importProblems(warnings) {
  return (warnings || []).slice(0, 20).map((warning) => warning.message || String(warning));
}

function findingItem(root, finding, onSelect) {
  const item = document.createElement('li');
  item.className = `finding finding-${finding.severity}`;
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'finding-link';
  const element = finding.element_id
    ? `${finding.element_name ? `${finding.element_name} ` : ''}(${finding.element_id})`
    : message(root, 'wholeFile', '整个文件');
  const where = document.createElement('span');
  where.className = 'finding-element';
  where.textContent = element;
  const rule = document.createElement('code');
  rule.className = 'finding-rule';
  rule.textContent = finding.rule;
  const text = document.createElement('span');
  text.className = 'finding-message';
  text.textContent = finding.message;
  button.append(where, ' ', rule, ' ', text);
  button.disabled = !finding.element_id;
  button.addEventListener('click', () => onSelect(finding.element_id));
  item.appendChild(button);
  return item;
}

function findingList(root, title, findings, onSelect, kind) {
  const section = document.createElement('section');
  section.className = `report-group report-${kind}`;
  const heading = document.createElement('h3');
  heading.textContent = fill(title, { count: findings.length });
  const list = document.createElement('ul');
  list.className = 'findings';
  for (const finding of findings) list.appendChild(findingItem(root, finding, onSelect));
  section.append(heading, list);
  return section;
}

/**
 * Draw a validation report into the page's report panel.
 *
 * @param {HTMLElement} root the editor's root element
 * @param {{errors: object[], warnings: object[]}} report as the server sends it
 * @param {{onSelect: Function, deployable: boolean, onDeploy: Function|null}} options
 *   ``onDeploy(acceptWarnings)`` is offered as a button when the report allows a deployment
 */
export function showReport(root, report, { onSelect, onDeploy }) {
  const panel = root.querySelector('[data-role=report]');
  const body = panel.querySelector('[data-role=report-body]');
  body.replaceChildren();
  const { errors = [], warnings = [] } = report;
  const summary = document.createElement('p');
  summary.className = 'report-summary';
  summary.setAttribute('role', 'status');
  if (errors.length) {
    summary.textContent = fill(message(root, 'reportErrors', '有 {errors} 个错误，不能部署。'), { errors: errors.length });
    summary.dataset.kind = 'error';
  } else if (warnings.length) {
    summary.textContent = fill(message(root, 'reportWarnings', '没有错误，有 {warnings} 个警告。'), { warnings: warnings.length });
    summary.dataset.kind = 'warning';
  } else {
    summary.textContent = message(root, 'reportClean', '校验通过，没有错误或警告。');
    summary.dataset.kind = 'success';
  }
  body.appendChild(summary);
  if (errors.length) {
    body.appendChild(findingList(root, message(root, 'errorsTitle', '错误（{count}）'), errors, onSelect, 'errors'));
  }
  if (warnings.length) {
    body.appendChild(findingList(root, message(root, 'warningsTitle', '警告（{count}）'), warnings, onSelect, 'warnings'));
  }
  if (onDeploy && !errors.length) body.appendChild(deployForm(root, warnings.length > 0, onDeploy));
  panel.hidden = false;
  panel.scrollIntoView({ block: 'nearest' });
}

function deployForm(root, hasWarnings, onDeploy) {
  const form = document.createElement('div');
  form.className = 'report-deploy';
  const button = document.createElement('button');
  button.type = 'button';
  button.className = 'button button-primary';
  button.dataset.action = 'confirm-deploy';
  button.textContent = message(root, 'deployNow', '部署为新版本');
  let accept = null;
  if (hasWarnings) {
    const label = document.createElement('label');
    label.className = 'choice';
    accept = document.createElement('input');
    accept.type = 'checkbox';
    accept.name = 'accept_warnings';
    accept.dataset.role = 'accept-warnings';
    label.append(accept, ' ', message(root, 'acceptWarnings', '接受警告并部署'));
    form.appendChild(label);
    button.disabled = true;
    accept.addEventListener('change', () => { button.disabled = !accept.checked; });
  }
  button.addEventListener('click', () => onDeploy(Boolean(accept && accept.checked)));
  form.appendChild(button);
  return form;
}

/**
 * The draft cycle of an editor page. ``editor`` provides:
 *   load(xml) → Promise<{warnings}>, getXML() → Promise<string>, onChange(callback), select(id),
 *   and optional exportSVG() → Promise<string>.
 */
export class DraftSession {
  constructor(root, editor) {
    this.root = root;
    this.editor = editor;
    this.revision = null;
    this.dirty = false;
    this.busy = false;
    this.key = '';
  }

  async open() {
    const { status: code, body } = await request(this.root, this.root.dataset.draftUrl);
    if (code !== 200 || !body) {
      showFailure(this.root, message(this.root, 'loadFailed', '草稿加载失败，请刷新页面重试。'), []);
      return false;
    }
    this.revision = body.revision;
    this.key = body.key;
    try {
      const { warnings } = await this.editor.load(body.xml);
      const problems = importProblems(warnings);
      if (problems.length) {
        showFailure(this.root, fill(message(this.root, 'importWarnings', '导入时有 {count} 处无法识别的内容，已尽量显示：'),
          { count: warnings.length }), problems);
        this.root.querySelector('[data-role=failure]').dataset.kind = 'warning';
      }
    } catch (error) {
      const problems = [error.message || String(error), ...importProblems(error.warnings)];
      showFailure(this.root, message(this.root, 'importFailed', '无法显示此图：'), problems);
      this.root.dataset.state = 'failed';
      return false;
    }
    this.editor.onChange(() => this.markDirty());
    this.root.dataset.state = 'ready';
    status(this.root, fill(message(this.root, 'loaded', '已打开（第 {revision} 次保存）。'), { revision: this.revision }));
    return true;
  }

  markDirty() {
    if (!this.dirty) {
      this.dirty = true;
      status(this.root, message(this.root, 'unsaved', '有未保存的修改。'), 'warning');
    }
  }

  async save() {
    const xml = await this.editor.getXML();
    const { status: code, body } = await request(this.root, this.root.dataset.saveUrl, {
      method: 'POST', body: { xml, revision: this.revision },
    });
    if (code === 200 && body) {
      this.revision = body.revision;
      this.key = body.key;
      this.dirty = false;
      this.root.querySelector('[data-role=draft-key]')?.replaceChildren(body.key);
      status(this.root, fill(message(this.root, 'saved', '已保存（第 {revision} 次保存）。'), { revision: body.revision }), 'success');
      return true;
    }
    this.showError(code, body);
    if (code === 409) this.offerOwnCopy(xml);
    return false;
  }

  showError(code, body) {
    // A refused CSRF token (the page sat open across a restart, or the session ended) comes back as HTML.
    const fallback = code === 400 && !body
      ? message(this.root, 'expired', '页面已过期或请求来源无法验证，请刷新页面后重试。')
      : message(this.root, 'requestFailed', '请求未能完成，请稍后重试。');
    const text = (body && body.message) || fallback;
    const details = body && body.fields ? Object.values(body.fields).flat() : [];
    status(this.root, [text, ...details].join(' '), 'error');
  }

  offerOwnCopy(xml) {
    const line = this.root.querySelector('[data-role=status]');
    const button = document.createElement('button');
    button.type = 'button';
    button.className = 'button button-small';
    button.dataset.action = 'download-own';
    button.textContent = message(this.root, 'downloadOwn', '导出我的版本');
    button.addEventListener('click', () => download(xml, `${this.key || 'draft'}.${this.root.dataset.kind}`, 'application/xml'));
    line.append(' ', button);
  }

  async validate({ deploy = false } = {}) {
    if (this.dirty && !(await this.save())) return;
    status(this.root, message(this.root, 'validating', '正在校验…'));
    const { status: code, body } = await request(this.root, this.root.dataset.validateUrl, {
      method: 'POST', body: { revision: this.revision },
    });
    if (code !== 200 || !body) {
      this.showError(code, body);
      return;
    }
    status(this.root, message(this.root, 'validated', '校验完成。'), body.valid ? 'success' : 'error');
    showReport(this.root, body.report, {
      onSelect: (id) => this.editor.select(id),
      onDeploy: deploy ? (accept) => this.deploy(accept) : null,
    });
  }

  async deploy(acceptWarnings) {
    if (this.dirty) {
      // Changed after the report was drawn: validate again, the report must match what is deployed.
      await this.validate({ deploy: true });
      return;
    }
    status(this.root, message(this.root, 'deploying', '正在部署…'));
    const { status: code, body } = await request(this.root, this.root.dataset.deployUrl, {
      method: 'POST', body: { revision: this.revision, accept_warnings: acceptWarnings },
    });
    if ((code === 201 || code === 200) && body && body.url) {
      this.dirty = false;
      window.location.assign(body.url);
      return;
    }
    this.showError(code, body);
    if (body && body.report) {
      showReport(this.root, body.report, {
        onSelect: (id) => this.editor.select(id),
        onDeploy: (accept) => this.deploy(accept),
      });
    }
  }

  async exportSVG() {
    const svg = await this.editor.exportSVG();
    download(svg, `${this.key || 'diagram'}.svg`, 'image/svg+xml');
  }

  async exportPNG() {
    const svg = await this.editor.exportSVG();
    download(await svgToPng(svg), `${this.key || 'diagram'}.png`, 'image/png');
  }

  async exportXML() {
    const xml = await this.editor.getXML();
    download(xml, `${this.key || 'draft'}.${this.root.dataset.kind}`, 'application/xml');
  }

  /** Wire the toolbar's buttons (data-action) and Ctrl+S; warn before leaving with unsaved changes. */
  bindToolbar() {
    const actions = {
      save: () => this.save(),
      validate: () => this.validate(),
      deploy: () => this.validate({ deploy: true }),
      'export-xml': () => this.exportXML(),
      'export-svg': () => this.exportSVG(),
      'export-png': () => this.exportPNG(),
    };
    for (const button of this.root.querySelectorAll('.designer-toolbar [data-action]')) {
      const action = actions[button.dataset.action];
      if (!action) continue;
      button.addEventListener('click', () => this.run(action));
      button.disabled = false;
    }
    document.addEventListener('keydown', (event) => {
      if ((event.ctrlKey || event.metaKey) && event.key === 's') {
        event.preventDefault();
        this.run(actions.save);
      }
    });
    window.addEventListener('beforeunload', (event) => {
      if (this.dirty) {
        event.preventDefault();
        event.returnValue = '';
      }
    });
  }

  async run(action) {
    if (this.busy) return;
    this.busy = true;
    this.root.setAttribute('aria-busy', 'true');
    try {
      await action();
    } catch (error) {
      console.warn('designer:', error);
      status(this.root, message(this.root, 'requestFailed', '请求未能完成，请稍后重试。'), 'error');
    } finally {
      this.busy = false;
      this.root.removeAttribute('aria-busy');
    }
  }
}

/** Run ``init`` once the document is parsed. */
export function whenReady(init) {
  if (document.readyState === 'loading') {
    document.addEventListener('DOMContentLoaded', init);
  } else {
    init();
  }
}
