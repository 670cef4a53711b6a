// timevisor web UI: a form generated from the scenario JSON Schema, runs streamed over Server-Sent
// Events into an ECharts plot that grows as the timeline arrives. Plain browser JavaScript, no build.

const $ = (id) => document.getElementById(id);
let schema = null;
let model = null;
let chart = null;
let source = null;

// ---------------------------------------------------------------- schema walking

function resolve(s) {
  if (s?.$ref) {
    const name = s.$ref.replace(/^#\/\$defs\//, '');
    return schema.$defs[name];
  }
  return s;
}

function kindOf(s) {
  s = resolve(s);
  if (!s) return 'string';
  if (s.enum) return 'enum';
  if (s.anyOf) return 'duration';
  return s.type ?? 'string';
}

/** A value built from a schema's defaults (for a new list item). */
function defaults(s) {
  s = resolve(s);
  if (s.default !== undefined) return structuredClone(s.default);
  if (s.type === 'object') {
    const o = {};
    for (const [k, p] of Object.entries(s.properties ?? {})) {
      const d = defaults(p);
      if (d !== undefined && (s.required ?? []).includes(k)) o[k] = d;
      else if (resolve(p).default !== undefined) o[k] = d;
    }
    return o;
  }
  if (s.type === 'array') return [];
  if (s.type === 'string') return '';
  if (s.type === 'boolean') return false;
  return undefined;
}

/** "vms[0].pauses[1].at" from ['vms', 0, 'pauses', 1, 'at'] (the loader's path format). */
function pathText(path) {
  let s = '';
  for (const p of path) s += typeof p === 'number' ? `[${p}]` : s === '' ? p : `.${p}`;
  return s;
}

function setAt(obj, path, value) {
  let o = obj;
  for (let i = 0; i < path.length - 1; i++) {
    if (o[path[i]] === undefined || o[path[i]] === null) o[path[i]] = typeof path[i + 1] === 'number' ? [] : {};
    o = o[path[i]];
  }
  const k = path[path.length - 1];
  if (value === undefined) delete o[k];
  else o[k] = value;
}

// ---------------------------------------------------------------- form

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === 'text') e.textContent = v;
    else e.setAttribute(k, v);
  }
  for (const c of children) if (c) e.append(c);
  return e;
}

function errSpan(path) {
  return el('span', { class: 'err', 'data-err-for': pathText(path), role: 'alert' });
}

function inputFor(s, value, path) {
  const kind = kindOf(s);
  const p = pathText(path);
  let input;
  if (kind === 'boolean') {
    input = el('input', { type: 'checkbox', 'data-path': p });
    // a missing value shows the default the loader will apply
    input.checked = value === undefined ? resolve(s).default === true : value === true;
    input.addEventListener('change', () => setAt(model, path, input.checked));
  } else if (kind === 'enum') {
    input = el('select', { 'data-path': p });
    for (const v of resolve(s).enum) input.append(el('option', { value: v, text: v }));
    input.value = value ?? resolve(s).default ?? '';
    input.addEventListener('change', () => setAt(model, path, input.value));
  } else if (kind === 'number' || kind === 'integer') {
    input = el('input', { type: 'number', step: kind === 'integer' ? '1' : 'any', 'data-path': p });
    input.value = value ?? '';
    if (resolve(s).default !== undefined) input.placeholder = String(resolve(s).default);
    input.addEventListener('input', () => setAt(model, path, input.value === '' ? undefined : Number(input.value)));
  } else {
    input = el('input', { type: 'text', 'data-path': p });
    input.value = value ?? '';
    if (resolve(s).default !== undefined && typeof resolve(s).default !== 'object') input.placeholder = String(resolve(s).default);
    // durations may be numbers of seconds; everything else stays text
    input.addEventListener('input', () => {
      const v = input.value.trim();
      setAt(model, path, v === '' ? undefined : kind === 'duration' && /^\d+(\.\d+)?$/.test(v) ? Number(v) : input.value);
    });
  }
  const d = resolve(s).description;
  if (d) input.title = d;
  return input;
}

function renderValue(s, value, path, key, required) {
  s = resolve(s);
  const kind = kindOf(s);
  if (kind === 'object') {
    const fs = el('fieldset', { 'data-path': pathText(path) }, el('legend', { text: key }));
    for (const [k, p] of Object.entries(s.properties ?? {})) {
      fs.append(renderValue(p, value?.[k], [...path, k], k, (s.required ?? []).includes(k)));
    }
    fs.append(errSpan(path));
    return fs;
  }
  if (kind === 'array' && resolve(s.items)?.type === 'object') {
    const fs = el('fieldset', { 'data-path': pathText(path) }, el('legend', { text: key }));
    const items = Array.isArray(value) ? value : [];
    items.forEach((item, i) => {
      const sub = renderValue(s.items, item, [...path, i], `${key}[${i}]`, true);
      const rm = el('button', { type: 'button', text: `remove ${key}[${i}]` });
      rm.addEventListener('click', () => {
        items.splice(i, 1);
        setAt(model, path, items);
        renderForm();
      });
      sub.append(rm);
      fs.append(sub);
    });
    const add = el('button', { type: 'button', text: `add ${key.replace(/s$/, '')}` });
    add.addEventListener('click', () => {
      items.push(defaults(s.items));
      setAt(model, path, items);
      renderForm();
    });
    fs.append(add, errSpan(path));
    return fs;
  }
  const label = el('label', { text: key + (required ? ' *' : '') });
  const wrap = el('div', { class: 'field' }, label, inputFor(s, value, path), errSpan(path));
  return wrap;
}

function renderForm() {
  const form = $('form');
  form.replaceChildren();
  const s = schema;
  for (const [k, p] of Object.entries(s.properties)) form.append(renderValue(p, model?.[k], [k], k, (s.required ?? []).includes(k)));
}

// ---------------------------------------------------------------- errors

function clearErrors() {
  for (const e of document.querySelectorAll('.err')) e.textContent = '';
  for (const e of document.querySelectorAll('.invalid')) e.classList.remove('invalid');
  for (const id of ['form-error', 'upload-error']) {
    $(id).hidden = true;
    $(id).textContent = '';
  }
}

/** Put an error beside the field its path names (or the nearest enclosing one); true if placed. */
function placeError(err) {
  for (let path = err.path ?? ''; path; path = path.replace(/(\[\d+\]|\.[^.[]+|^[^.[]+)$/, '')) {
    const span = document.querySelector(`[data-err-for="${CSS.escape(path)}"]`);
    if (!span) continue;
    span.textContent = err.message;
    document.querySelector(`[data-path="${CSS.escape(path)}"]`)?.classList.add('invalid');
    span.scrollIntoView({ block: 'nearest' });
    return true;
  }
  return false;
}

function showError(err, box) {
  placeError(err);
  $(box).textContent = err.line;
  $(box).hidden = false;
}

// ---------------------------------------------------------------- loading scenarios

async function post(url, body) {
  const r = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}

async function loadText(text, name, errorBox) {
  clearErrors();
  const r = await post('/api/validate', { text, name });
  if (r.status === 200) {
    model = r.body.scenario;
    renderForm();
    return;
  }
  // show what could be read, with the error beside its field
  if (r.body.raw && typeof r.body.raw === 'object') {
    model = r.body.raw;
    renderForm();
  }
  showError(r.body.error, errorBox);
}

// ---------------------------------------------------------------- running

function offsetUnit(maxAbs) {
  if (maxAbs >= 10e9) return { name: 's', ns: 1e9 };
  if (maxAbs >= 10e6) return { name: 'ms', ns: 1e6 };
  if (maxAbs >= 10e3) return { name: 'µs', ns: 1e3 };
  return { name: 'ns', ns: 1 };
}

function startChart(vms) {
  chart ??= echarts.init($('chart'));
  chart.clear();
  const series = new Map(vms.map((v) => [v, []]));
  const draw = () => {
    let max = 0;
    for (const pts of series.values()) for (const p of pts) max = Math.max(max, Math.abs(p[1]));
    const u = offsetUnit(max);
    chart.setOption(
      {
        animation: false,
        title: { text: 'guest CLOCK_REALTIME − true time', left: 'center', top: 4, textStyle: { fontSize: 14 } },
        tooltip: { trigger: 'axis' },
        legend: { top: 30 },
        grid: { left: 70, right: 30, top: 70, bottom: 50 },
        xAxis: { type: 'value', name: 'time since start (s)', nameLocation: 'middle', nameGap: 28 },
        yAxis: { type: 'value', name: `offset (${u.name})`, nameLocation: 'middle', nameGap: 52, scale: true },
        series: [...series].map(([name, pts]) => ({ name, type: 'line', showSymbol: false, data: pts.map((p) => [p[0], p[1] / u.ns]) })),
      },
      true,
    );
  };
  return {
    add(rows) {
      for (const [t, vm, off] of rows) series.get(vm)?.push([t, off]);
      document.body.dataset.rowBatches = String(Number(document.body.dataset.rowBatches ?? 0) + 1);
      draw();
    },
    points: () => [...series.values()].reduce((a, p) => a + p.length, 0),
  };
}

function run() {
  clearErrors();
  source?.close();
  $('downloads').hidden = true;
  $('verdicts').replaceChildren();
  post('/api/run', { scenario: model })
    .then((r) => {
      if (r.status !== 202) {
        showError(r.body.error, 'form-error');
        $('status-text').textContent = 'the scenario has an error';
        return;
      }
      const id = r.body.id;
      const plot = startChart((model.vms ?? []).map((v) => v.name));
      $('progress').value = 0;
      $('status-text').textContent = 'running…';
      document.body.dataset.state = 'running';
      document.body.dataset.rowBatches = '0';
      source = new EventSource(`/api/runs/${id}/events`);
      source.addEventListener('progress', (e) => {
        $('progress').value = JSON.parse(e.data).fraction;
      });
      source.addEventListener('rows', (e) => {
        plot.add(JSON.parse(e.data).rows);
        $('status-text').textContent = `running… ${plot.points()} points`;
      });
      source.addEventListener('done', (e) => {
        source.close();
        const d = JSON.parse(e.data);
        $('progress').value = 1;
        $('status-text').textContent = `done: ${d.summary.samples} samples, ${d.summary.events_dispatched} events`;
        for (const v of d.verdicts) {
          const p = el('p', { class: `verdict ${v.level}`, 'data-vm': v.vm }, el('b', { text: v.vm }), `: ${v.text}`);
          $('verdicts').append(p);
        }
        $('downloads').replaceChildren('download: ');
        if (d.chart) chart.setOption(d.chart, true);
        ['summary.json', 'timeline.csv', 'report.html', 'trace.json'].forEach((f, i) => {
          if (i) $('downloads').append(' · ');
          $('downloads').append(el('a', { id: `dl-${f.split('.')[0]}`, href: `/api/runs/${id}/${f}`, text: f }));
        });
        $('downloads').hidden = false;
        document.body.dataset.state = 'done';
      });
      source.addEventListener('error', (e) => {
        source.close();
        if (e.data) {
          const err = JSON.parse(e.data);
          showError(
            { message: err.message, path: err.path ?? null, line: [err.where, err.path, err.message].filter(Boolean).join(': ') },
            'form-error',
          );
        }
        $('status-text').textContent = 'the run failed';
        document.body.dataset.state = 'failed';
      });
    })
    .catch(fatal);
}

/** A failure of the page itself (server gone, bad response): shown, never swallowed. */
function fatal(e) {
  $('form-error').textContent = `timevisor: ${e.message ?? e}`;
  $('form-error').hidden = false;
  document.body.dataset.state = 'failed';
}

// ---------------------------------------------------------------- start

async function main() {
  schema = await (await fetch('/api/schema')).json();
  const library = await (await fetch('/api/library')).json();
  for (const s of library) $('library').append(el('option', { value: s.id, text: s.title }));
  const pick = () => {
    const s = library.find((x) => x.id === $('library').value);
    return loadText(s.yaml, s.id, 'form-error');
  };
  $('library').addEventListener('change', () => pick().catch(fatal));
  $('upload').addEventListener('change', () => {
    const f = $('upload').files[0];
    if (f)
      f.text()
        .then((text) => loadText(text, f.name, 'upload-error'))
        .catch(fatal);
  });
  $('run').addEventListener('click', run);
  await pick();
  document.body.dataset.ready = 'true';
}

main().catch(fatal);
