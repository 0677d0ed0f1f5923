import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';
import { createTestApp } from '../support/test-app';

it('probe', async () => {
  const t = await createTestApp();
  const browser = await chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
      '--disable-quic',
    ],
  });
  try {
    const page = await browser.newPage();
    const logs: string[] = [];
    page.on('console', (m) => logs.push(`${m.type()}: ${m.text()}`));
    page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
    page.on('requestfailed', (r) => logs.push(`failed: ${r.url()} ${r.failure()?.errorText}`));
    const resp = await page.goto(`${t.baseUrl}/docs`);
    logs.push('csp: ' + resp?.headers()['content-security-policy']);
    await page.waitForTimeout(5000);
    writeFileSync('/tmp/probe.html', await page.content());
    await page.screenshot({ path: '/tmp/probe.png', fullPage: true });
    writeFileSync('/tmp/probe.log', logs.join('\n'));
  } finally {
    await browser.close();
    await t.close();
  }
});
