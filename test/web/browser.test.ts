// End-to-end: the web UI in Debian's headless Chromium, driven by playwright-core. Screenshots go to
// test-artifacts/ (gitignored) for a person to look at.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { chromium } from 'playwright-core';
import { startWebServer } from '../../src/web/index.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARTIFACTS = resolve(import.meta.dirname, '../../test-artifacts');
const FIXTURE = resolve(import.meta.dirname, '../fixtures/report/pause-short.yaml');

test('web UI in Chromium: run a scenario, see the plot grow and the verdict; a bad upload shows its error beside the field', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`Debian's chromium is not installed (${CHROMIUM}; apt-get install chromium)`);
    return;
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  const web = await startWebServer({ port: 0 });
  // --no-sandbox: the tests run as root, where Chromium's sandbox refuses to start
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
    const pageErrors: string[] = [];
    page.on('pageerror', (e) => pageErrors.push(e.message));
    await page.goto(web.url);
    await page.waitForSelector('body[data-ready="true"]');

    // the form is generated from the schema: the demo's four VMs, their fields, nested pauses
    // page.evaluate with source text: this file is compiled without the DOM library
    const vmFieldsets = () =>
      page.evaluate<number>(
        `[...document.querySelectorAll('fieldset[data-path]')].filter((f) => /^vms\\[\\d+\\]$/.test(f.dataset.path)).length`,
      );
    assert.equal(await vmFieldsets(), 4);
    assert.equal(await page.inputValue('[data-path="hosts[0].tsc.freq_khz"]'), '2596136');
    assert.equal(await page.inputValue('[data-path="vms[1].sync.method"]'), 'agent');

    // pick the short library scenario, change a parameter, run it
    await page.selectOption('#library', 'pause-15min');
    await page.waitForSelector('[data-path="vms[1].name"]');
    assert.equal(await vmFieldsets(), 2);
    await page.fill('[data-path="vms[0].pauses[0].duration"]', '2min');
    await page.click('#run');
    await page.waitForSelector('body[data-state="done"]', { timeout: 60_000 });
    const batches = Number(await page.getAttribute('body', 'data-row-batches'));
    assert.ok(batches >= 2, `the plot grew in ${batches} batches`);
    const points = await page.evaluate<number[]>(
      `echarts.getInstanceByDom(document.getElementById('chart')).getOption().series.map((s) => s.data.length)`,
    );
    assert.equal(points.length, 2);
    // when done the plot is the report's: the pause shaded on each VM's line
    const shaded = await page.evaluate<number[]>(
      `echarts.getInstanceByDom(document.getElementById('chart')).getOption().series.map((s) => s.markArea.data.length)`,
    );
    assert.deepEqual(shaded, [1, 1]);
    // 15 min sampled every 10 s, less the 12 samples inside the 2-minute pause, plus resume and sync samples
    for (const n of points) assert.ok(n >= 78, `${n} points`);
    assert.equal((await page.locator('#chart canvas').count()) > 0, true);
    const verdicts = await page.locator('.verdict').allTextContents();
    assert.equal(verdicts.length, 2);
    // the agent guest was paused two minutes and put right by guest-set-time; NTP kept its guest in time
    assert.match(verdicts[0]!, /^vm-agent: (in time|drifting): /);
    assert.match(verdicts[1]!, /^vm-ntp: in time: /);
    const href = await page.getAttribute('#dl-report', 'href');
    const report = await page.evaluate<string>(`fetch(${JSON.stringify(href)}).then((r) => r.text())`);
    assert.match(report, /timevisor report: pause-15min/);
    await page.screenshot({ path: resolve(ARTIFACTS, 'web-run.png'), fullPage: true });

    // an edited field that is out of range: the loader's error appears beside that field
    await page.fill('[data-path="hosts[0].tsc.freq_khz"]', '0');
    await page.click('#run');
    const beside = page.locator('[data-err-for="hosts[0].tsc.freq_khz"]');
    await beside.filter({ hasText: /./ }).waitFor();
    assert.equal(await beside.textContent(), 'must be ≥ 1000, got 0');

    // upload a bad file: its error, with file, line and path, beside the upload and beside the field
    const bad = readFileSync(FIXTURE, 'utf8').replace('profile: qemu-kvm\n', 'profile: qemu-kvm\n    vcpus: 0\n');
    const line = bad.split('\n').indexOf('    vcpus: 0') + 1;
    await page.setInputFiles('#upload', { name: 'bad.yaml', mimeType: 'application/yaml', buffer: Buffer.from(bad) });
    await page.waitForSelector('#upload-error:not([hidden])');
    assert.equal(await page.textContent('#upload-error'), `bad.yaml:${line}: vms[0].vcpus: must be ≥ 1, got 0`);
    assert.equal(await page.textContent('[data-err-for="vms[0].vcpus"]'), 'must be ≥ 1, got 0');
    await page.screenshot({ path: resolve(ARTIFACTS, 'web-upload-error.png'), fullPage: true });
    assert.deepEqual(pageErrors, []);
  } finally {
    await browser.close();
    await web.close();
  }
});

test('the HTML report draws its four plots in Chromium with the network off', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`Debian's chromium is not installed (${CHROMIUM}; apt-get install chromium)`);
    return;
  }
  mkdirSync(ARTIFACTS, { recursive: true });
  const { reportHtml } = await import('../../src/report/index.ts');
  const { simulate } = await import('../../src/world/simulation.ts');
  const { loadScenario } = await import('../../src/world/scenario.ts');
  const file = resolve(ARTIFACTS, 'report.html');
  writeFileSync(file, reportHtml(simulate(loadScenario(FIXTURE)), { scenarioText: readFileSync(FIXTURE, 'utf8') }));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
  try {
    const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
    await context.setOffline(true);
    const page = await context.newPage();
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(e.message));
    page.on('requestfailed', (r) => errors.push(`request ${r.url()}`));
    await page.goto(`file://${file}`);
    await page.waitForSelector('#chart-host canvas');
    const series = await page.evaluate<number[]>(
      `['offset', 'rate', 'monotonic', 'host'].map((id) => echarts.getInstanceByDom(document.getElementById('chart-' + id)).getOption().series.length)`,
    );
    assert.deepEqual(series, [2, 2, 2, 1]);
    assert.equal(await page.locator('.verdict').count(), 2);
    await page.screenshot({ path: resolve(ARTIFACTS, 'report.png'), fullPage: true });
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
  }
});
