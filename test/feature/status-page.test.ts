import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import test from 'ava';
import { chromium, type Browser, type Page } from 'playwright-core';
import { loadMnist, digit } from '../../src/index.js';
import { serve, type RunningServer } from '../../src/http/serve.js';
import { resolveServeSettings } from '../../src/http/settings.js';
import { projectRoot } from '../../src/paths.js';

// The live status page in a real browser (Debian's chromium, driven by playwright-core) against a real server.

const chromiumPath = '/usr/bin/chromium';
const available = existsSync(chromiumPath);
/** Where the test leaves its screenshots (ignored by git; the README's copy is docs/status-page.png). */
const outputDir = path.join(projectRoot, 'test-output');

if (!available && process.env.CI !== undefined && process.env.CI !== 'false') {
  test('chromium is installed (.ci/run installs Debian chromium)', (t) => t.fail(`no ${chromiumPath}: the status page cannot be tested`));
}
const browserTest = available ? test.serial : test.skip;

async function launch(t: { teardown(fn: () => Promise<void>): void }): Promise<Browser> {
  // playwright's launch() runs chromium on a fresh temporary profile of its own (its --user-data-dir) every time.
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
  });
  t.teardown(() => browser.close());
  return browser;
}

async function start(t: { teardown(fn: () => Promise<void>): void }, extra: string[] = [], bundled = true): Promise<RunningServer> {
  const settings = resolveServeSettings(['--port', '0', '--admin-port', '0', '--log-level', 'silent', '--replicas', '1', '--slo-ms', '100', ...extra], {});
  const server = await serve({ ...settings, bundled });
  t.teardown(() => server.close());
  return server;
}

/** Records console errors and uncaught page errors. */
function watchErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on('console', (m) => {
    if (m.type() === 'error') errors.push(m.text());
  });
  page.on('pageerror', (e) => errors.push(e.message));
  return errors;
}

const cellTexts = (page: Page, table: string): Promise<string[][]> =>
  page.$$eval(`#${table} tbody tr`, (rows) => rows.map((r) => [...r.querySelectorAll('td')].map((c) => c.textContent ?? '')));

browserTest('the status page lists the models and replicas, follows load and a version change, without console errors', async (t) => {
  const server = await start(t);
  const browser = await launch(t);
  const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
  const errors = watchErrors(page);
  await page.goto(`${server.adminUrl}/`);
  await page.waitForFunction(() => document.querySelectorAll('#models-table tbody tr').length >= 3, undefined, { timeout: 10_000 });
  const models = await cellTexts(page, 'models-table');
  for (const m of ['mnist-cnn', 'mnist-mlp', 'mnist-linear']) {
    const row = models.find((r) => r[0] === m);
    t.truthy(row, `${m} listed`);
    t.is(row?.[1], '1 (current)');
    t.is(row?.[2], `${m}@1#0`);
    t.is(row?.[3], 'ready');
  }
  t.deepEqual(
    (await cellTexts(page, 'apps-table')).map((r) => [r[0], r[8], r[9]]),
    [['digits', 'exp4', 'mnist-cnn, mnist-mlp, mnist-linear']],
  );

  // Load: throughput text and the chart must change within 3 s.
  const pointsBefore = Number((await page.getAttribute('#chart-throughput', 'data-points')) ?? 0);
  const digits = loadMnist().test;
  let sending = true;
  const load = (async () => {
    for (let i = 0; sending; i++) {
      await fetch(`${server.queryUrl}/digits/predict`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ input: Array.from(digit(digits, i % 500)) }) });
    }
  })();
  const started = Date.now();
  await page.waitForFunction(() => /digits [1-9][0-9.]*\/s/.test(document.getElementById('latest-throughput')?.textContent ?? ''), undefined, { timeout: 3000, polling: 100 });
  const reacted = Date.now() - started;
  sending = false;
  await load;
  const qps = Number((await cellTexts(page, 'apps-table'))[0]?.[1]);
  t.true(qps > 0, `queries/s shown: ${qps}`);
  const pointsAfter = Number((await page.getAttribute('#chart-throughput', 'data-points')) ?? 0);
  t.true(pointsAfter > pointsBefore, `chart points ${pointsBefore} -> ${pointsAfter}`);
  t.true((await page.$$('#chart-throughput svg path')).length > 0, 'the throughput chart drew a line');
  t.log(`throughput shown ${reacted} ms after load started`);

  // A version change through the admin API: the page follows.
  const deployed = await fetch(`${server.adminUrl}/admin/add_model`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model_name: 'mnist-mlp', model_version: '2-broken', model_data_path: 'mnist-mlp/2-broken/model.onnx', replicas: 1 }),
  });
  t.is(deployed.status, 200);
  await page.waitForFunction(
    () => [...document.querySelectorAll('#models-table tbody tr')].some((r) => r.textContent?.includes('2-broken (current)') === true && r.textContent.includes('ready')),
    undefined,
    { timeout: 5000, polling: 100 },
  );
  t.pass('the page shows mnist-mlp 2-broken as current');

  // Text values beside every chart.
  for (const chart of ['throughput', 'latency', 'weights', 'batches']) {
    t.not(((await page.textContent(`#latest-${chart}`)) ?? '').trim(), '', `${chart} has a text value`);
  }
  // Keyboard: the first Tab reaches the skip link, which moves focus to the applications.
  await page.keyboard.press('Tab');
  t.is(await page.evaluate(() => document.activeElement?.textContent), 'Skip to applications');
  await page.keyboard.press('Enter');
  t.is(await page.evaluate(() => document.activeElement?.id), 'applications');

  mkdirSync(outputDir, { recursive: true });
  await page.screenshot({ path: path.join(outputDir, 'status-page.png'), fullPage: true });
  // A phone's width: nothing wider than the screen but the scrollable tables.
  await page.setViewportSize({ width: 390, height: 844 });
  // The charts re-render to the new width on the resize event, asynchronously: wait for that, then measure.
  await page.waitForFunction(() => document.documentElement.scrollWidth <= document.documentElement.clientWidth, undefined, { timeout: 5000 }).catch(() => {});
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth - document.documentElement.clientWidth);
  t.true(overflow <= 0, `page overflows a phone's width by ${overflow}px`);
  await page.screenshot({ path: path.join(outputDir, 'status-page-phone.png'), fullPage: true });
  t.deepEqual(errors, []);
});

browserTest('with an admin token, a browser signs in with a form that sets an HttpOnly cookie; the token never goes in the URL', async (t) => {
  const server = await start(t, ['--admin-token', 'open-sesame'], false);
  // Without the cookie or the header, the API stays closed; the page shows the sign-in form.
  t.is((await fetch(`${server.adminUrl}/admin/get_all_applications`)).status, 401);
  t.is((await fetch(`${server.adminUrl}/status/events`)).status, 401);
  const browser = await launch(t);
  const page = await browser.newPage();
  const errors = watchErrors(page);
  await page.goto(`${server.adminUrl}/`);
  t.is(await page.getAttribute('input[name=token]', 'type'), 'password');
  await page.fill('input[name=token]', 'wrong');
  await page.click('button[type=submit]');
  t.regex((await page.textContent('.error')) ?? '', /not the admin token/);
  await page.fill('input[name=token]', 'open-sesame');
  await page.click('button[type=submit]');
  await page.waitForSelector('#apps-table');
  await page.waitForFunction(() => /live/.test(document.getElementById('connection')?.textContent ?? ''), undefined, { timeout: 5000 });
  t.false(page.url().includes('open-sesame'), page.url());
  const cookies = await page.context().cookies();
  const session = cookies.find((c) => c.name === 'clipper_session');
  t.truthy(session);
  t.true(session?.httpOnly);
  t.is(session?.sameSite, 'Strict');
  t.false(session?.value.includes('open-sesame'));
  // The cookie opens the admin API to this browser too.
  const apps = await page.evaluate(async () => (await fetch('/admin/get_all_applications')).status);
  t.is(apps, 200);
  t.deepEqual(
    errors.filter((e) => !/401/.test(e)),
    [],
  );
});
