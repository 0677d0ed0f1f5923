/**
 * Swagger UI, driven by a real (headless Debian) Chromium: the documentation page renders under
 * the app's Content-Security-Policy, the bearer "Authorize" dialog works, and "Try it out" talks to
 * the live API — a 200 list and a 409 problem+json — exactly as a developer would see them.
 *
 * Runs in the e2e project (same global setup: PostgreSQL and the template database); see README.md.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import {
  chromium,
  type Browser,
  type ConsoleMessage,
  type Locator,
  type Page,
} from 'playwright-core';
import { DEMO_ACCOUNTS } from '../../src/common/demo-data';
import { seedDemo } from '../../src/database/seed';
import { createProduct, placeOrder, productInput } from '../support/fixtures';
import { account, type Account } from '../support/http';
import { createTestApp, type TestApp } from '../support/test-app';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--no-first-run',
  '--disable-quic',
];
/** Per wait: generous for a 2-core machine, yet a broken page fails well within the test timeout. */
const WAIT_MS = 30_000;
const OUTPUT_DIR = join(process.cwd(), 'test-output');

/** Swagger UI ids are `operations-<tag>-<operationId>`; Nest's operationId is Controller_method. */
const LIST_ORDERS = '#operations-orders-OrdersController_list';
const CREATE_PRODUCT = '#operations-products-ProductsController_create';
const CREATE_ORDER = '#operations-orders-OrdersController_create';
const LOGIN = '#operations-auth-AuthController_login';

describe('Swagger UI (browser)', () => {
  let t: TestApp | undefined;
  let browser: Browser | undefined;
  let page: Page;
  let admin: Account;
  let customer: Account;
  let product: { id: string; body: Record<string, any> };
  let orderId: string;
  /** Browser console errors and uncaught page errors, reported with any failing step. */
  const consoleErrors: string[] = [];

  beforeAll(async () => {
    t = await createTestApp();
    admin = await account(t, 'admin');
    customer = await account(t, 'customer');
    product = await createProduct(t, admin);
    const order = await placeOrder(t, customer, [{ productId: product.id, quantity: 1 }]);
    expect({ status: order.status, id: typeof order.body.id }).toEqual({
      status: 201,
      id: 'string',
    });
    orderId = order.body.id;

    await mkdir(OUTPUT_DIR, { recursive: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.setDefaultTimeout(WAIT_MS);
    page.on('console', (m: ConsoleMessage) => {
      if (m.type() === 'error') consoleErrors.push(`console: ${m.text()}`);
    });
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));
  }, 120_000);

  afterAll(async () => {
    // Each is closed even if the other, or beforeAll half-way, failed.
    await browser?.close().catch(() => undefined);
    await t?.close();
  });

  /**
   * Runs one step; on failure, names the step, lists the browser's console errors (CSP violations
   * show up there) and keeps a screenshot of the page as it was.
   */
  async function step(name: string, fn: () => Promise<void> | void): Promise<void> {
    try {
      await fn();
    } catch (err) {
      const shot = join(OUTPUT_DIR, 'swagger-ui-failure.png');
      await page.screenshot({ path: shot, fullPage: true }).catch(() => undefined);
      const message = err instanceof Error ? err.message : String(err);
      const errors = consoleErrors.length ? consoleErrors.join('\n  ') : '(none)';
      throw new Error(
        `Swagger UI step failed: ${name}\n${message}\n\nBrowser console errors:\n  ${errors}\nScreenshot: ${shot}`,
        { cause: err },
      );
    }
  }

  /** Authorizes the bearer scheme with `token`, logging out a previous token first. */
  async function authorize(token: string): Promise<void> {
    await page.locator('.auth-wrapper .btn.authorize').click();
    const dialog = page.locator('.dialog-ux .modal-ux');
    await dialog.waitFor();
    const logout = dialog.getByRole('button', { name: 'Remove authorization' });
    if (await logout.isVisible()) await logout.click();
    await dialog.getByLabel('auth-bearer-value').fill(token);
    await dialog.getByRole('button', { name: 'Apply credentials' }).click();
    // Once applied, the dialog offers "Logout" instead of the input.
    await logout.waitFor();
    await dialog.locator('.btn-done').first().click();
    await dialog.waitFor({ state: 'detached' });
    // The page-level button turns "locked" once a scheme is authorized.
    await page.locator('.auth-wrapper .btn.authorize.locked').waitFor();
  }

  /**
   * Logs in through the Authorize dialog's OAuth2 password flow (email as username), logging out
   * a previous login first: what a new user does with the demo credentials.
   */
  async function authorizeWithPassword(email: string, password: string): Promise<void> {
    await page.locator('.auth-wrapper .btn.authorize').click();
    const dialog = page.locator('.dialog-ux .modal-ux');
    await dialog.waitFor();
    const oauth = dialog.locator('.auth-container', { hasText: 'oauth2' });
    const logout = oauth.getByRole('button', { name: 'Remove authorization' });
    if (await logout.isVisible()) await logout.click();
    await oauth.locator('input[data-name="username"]').fill(email);
    await oauth.locator('input[data-name="password"]').fill(password);
    await oauth.getByRole('button', { name: 'Apply given OAuth2 credentials' }).click();
    // Swagger UI fetched a token from /api/v1/auth/token: the block now offers "Logout".
    await logout.waitFor();
    await dialog.locator('.btn-done').first().click();
    await dialog.waitFor({ state: 'detached' });
    await page.locator('.auth-wrapper .btn.authorize.locked').waitFor();
  }

  /** Expands an operation (if collapsed) and switches it to "Try it out". */
  async function tryItOut(operation: Locator): Promise<void> {
    if (!(await operation.evaluate((el) => el.classList.contains('is-open')))) {
      await operation.locator('.opblock-summary-control').click();
    }
    await operation.locator('.try-out__btn').click();
    await operation.locator('.execute').waitFor();
  }

  /** Clicks "Execute" and returns the live response as Swagger UI renders it. */
  async function execute(
    operation: Locator,
  ): Promise<{ status: string; body: string; headers: string }> {
    // The answer to this click, from the network: on a second click the table still shows the
    // previous answer until Swagger UI renders the new one.
    const [answer] = await Promise.all([
      page.waitForResponse(
        (r) => r.url().includes('/api/v1/') && r.request().method() !== 'OPTIONS',
      ),
      operation.locator('.execute').click(),
    ]);
    // The live table shows it once rendered; the documented one is `.responses-table`.
    const live = operation.locator('.live-responses-table .response');
    await live
      .locator('.response-col_status', { hasText: new RegExp(`^\\s*${answer.status()}\\b`) })
      .first()
      .waitFor();
    const text = async (selector: string) =>
      ((await live.locator(selector).first().textContent()) ?? '').trim();
    // The description cell holds an <h5> heading followed by its content, per section.
    return {
      status: await text('.response-col_status'),
      body: await text('h5:text-is("Response body") + .highlight-code pre'),
      headers: await text('h5:text-is("Response headers") + pre'),
    };
  }

  it('renders, authorizes, and tries GET /orders (200) and POST /products (409)', async () => {
    await step('open /docs and render the operations list', async () => {
      const response = await page.goto(`${t!.baseUrl}/docs`);
      expect(response?.status()).toBe(200);
      await page.locator(LIST_ORDERS).waitFor();
      await page.locator(CREATE_PRODUCT).waitFor();
    });

    await step('authorize with the customer’s bearer token', () => authorize(customer.token));

    await step('GET /api/v1/orders via Try it out → 200 with the order', async () => {
      const operation = page.locator(LIST_ORDERS);
      await tryItOut(operation);
      const res = await execute(operation);
      expect(res.status).toBe('200');
      expect(res.body).toContain(orderId);
      await page.screenshot({ path: join(OUTPUT_DIR, 'swagger-ui-orders.png'), fullPage: true });
      // Collapse it again so the final screenshot is not dominated by this operation.
      await operation.locator('.opblock-summary-control').click();
      await operation.locator('.execute').waitFor({ state: 'detached' });
    });

    await step('re-authorize as admin', () => authorize(admin.token));

    await step('POST /api/v1/products with a taken SKU → 409 SKU_TAKEN', async () => {
      const operation = page.locator(CREATE_PRODUCT);
      await tryItOut(operation);
      // Same SKU as the existing product, fresh slug: only the SKU conflicts.
      const duplicate = productInput({ sku: product.body.sku });
      await operation.locator('textarea.body-param__text').fill(JSON.stringify(duplicate, null, 2));
      const res = await execute(operation);
      expect(res.status).toMatch(/^409\b/);
      expect(res.body).toMatch(/"code":\s*"SKU_TAKEN"/);
      expect(res.headers).toMatch(/content-type: application\/problem\+json/i);
    });

    await step('no Content-Security-Policy violations', () => {
      expect(consoleErrors.filter((e) => /Content.Security.Policy/i.test(e))).toEqual([]);
    });

    await page.screenshot({ path: join(OUTPUT_DIR, 'swagger-ui.png'), fullPage: true });
  }, 180_000);

  /**
   * A new user on the demo data (issue 20): the page names the demo accounts, Authorize logs in with
   * an email and a password (OAuth2 password flow), and the prefilled examples, sent unchanged,
   * succeed: login 200, create product 201 (then 409 `SKU_TAKEN` on a second try), place order 201.
   */
  it('logs in through Authorize with a demo email and password; the prefilled examples work on the demo data', async () => {
    await seedDemo(t!.db, 'development');
    const [demoAdmin, demoCustomer] = (['admin', 'customer'] as const).map((role) =>
      DEMO_ACCOUNTS.find((a) => a.role === role)!,
    );
    // A fresh context: nothing authorized or persisted from the other test.
    const context = await browser!.newContext({ viewport: { width: 1280, height: 900 } });
    page = await context.newPage();
    page.setDefaultTimeout(WAIT_MS);
    page.on('pageerror', (e) => consoleErrors.push(`pageerror: ${e.message}`));

    await step('open /docs: the description names the demo accounts', async () => {
      await page.goto(`${t!.baseUrl}/docs`);
      await page.locator(CREATE_ORDER).waitFor();
      const info = (await page.locator('.information-container').textContent()) ?? '';
      expect(info).toContain(`${demoCustomer.email} / ${demoCustomer.password}`);
      expect(info).toContain(`${demoAdmin.email} / ${demoAdmin.password}`);
    });

    await step('POST /api/v1/auth/login, example unchanged → 200 with a token', async () => {
      const operation = page.locator(LOGIN);
      await tryItOut(operation);
      const res = await execute(operation);
      expect(res.status).toBe('200');
      expect(res.body).toMatch(/"accessToken":/);
    });

    await step('Authorize (oauth2) with the demo admin’s email and password', () =>
      authorizeWithPassword(demoAdmin.email, demoAdmin.password),
    );

    await step(
      'POST /api/v1/products, example unchanged → 201; again → 409 SKU_TAKEN',
      async () => {
        const operation = page.locator(CREATE_PRODUCT);
        await tryItOut(operation);
        const res = await execute(operation);
        expect(res.status).toBe('201');
        expect(res.body).toMatch(/"sku":\s*"TOTE-BAG-NATURAL"/);
        const again = await execute(operation);
        expect(again.status).toMatch(/^409\b/);
        expect(again.body).toMatch(/"code":\s*"SKU_TAKEN"/);
      },
    );

    await step('Authorize (oauth2) as the demo customer', () =>
      authorizeWithPassword(demoCustomer.email, demoCustomer.password),
    );

    await step('POST /api/v1/orders, example unchanged → 201 for the demo Logo mug', async () => {
      const operation = page.locator(CREATE_ORDER);
      await tryItOut(operation);
      const res = await execute(operation);
      expect(res.status).toBe('201');
      expect(res.body).toMatch(/"sku":\s*"MUG-LOGO"/);
      expect(res.body).toMatch(/"status":\s*"pending"/);
      await page.screenshot({ path: join(OUTPUT_DIR, 'swagger-ui-demo.png'), fullPage: true });
    });

    await step('no Content-Security-Policy violations', () => {
      expect(consoleErrors.filter((e) => /Content.Security.Policy/i.test(e))).toEqual([]);
    });
    await context.close();
  }, 180_000);
});
