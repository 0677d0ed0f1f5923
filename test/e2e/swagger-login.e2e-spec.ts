import { DEMO_ACCOUNTS, DEMO_PRODUCTS } from '../../src/common/demo-data';
import { seedDemo } from '../../src/database/seed';
import { type Account, account, expectProblem } from '../support/http';
import { createTestApp, type TestApp } from '../support/test-app';

/**
 * The Swagger UI as a new user meets it (issue 20): Authorize logs in with an email and a password
 * (OAuth 2.0 password grant on POST /auth/token), and the prefilled examples work on the demo data.
 * The browser itself is driven in test/browser/swagger-ui.browser-spec.ts.
 */
describe('Swagger UI login and examples', () => {
  let t: TestApp;
  let alice: Account;
  let doc: Record<string, any>;
  beforeAll(async () => {
    t = await createTestApp();
    alice = await account(t);
    doc = (await t.http().get('/docs-json').expect(200)).body;
  });
  afterAll(() => t.close());

  const token = (form: Record<string, string>) =>
    t.http().post('/api/v1/auth/token').type('form').send(form);

  describe('POST /api/v1/auth/token (password grant)', () => {
    it('answers an OAuth token for a form-encoded email and password, usable as a bearer', async () => {
      const res = await token({
        grant_type: 'password',
        username: alice.email,
        password: alice.password,
        scope: '',
      }).set('Authorization', 'Basic Og=='); // what Swagger UI sends with empty client fields
      expect(res.status).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/json/);
      expect(res.headers['cache-control']).toBe('no-store');
      expect(res.body).toEqual({
        access_token: expect.any(String),
        token_type: 'Bearer',
        expires_in: 3600,
      });
      const me = await t
        .http()
        .get('/api/v1/users/me')
        .set('Authorization', `Bearer ${res.body.access_token}`)
        .expect(200);
      expect(me.body.id).toBe(alice.id);
    });

    it('refuses wrong credentials as login does: 401 problem+json', async () => {
      const res = await token({ grant_type: 'password', username: alice.email, password: 'nope' });
      expectProblem(res, 'UNAUTHENTICATED');
      expect(res.headers['www-authenticate']).toMatch(/^Bearer/);
    });

    it('refuses another grant, a missing field or a repeated one with 400 naming it', async () => {
      const grant = await token({ grant_type: 'client_credentials', username: 'a', password: 'b' });
      expectProblem(grant, 'VALIDATION_FAILED');
      expect(grant.body.errors.map((e: { field: string }) => e.field)).toEqual(['grant_type']);
      const missing = await token({ grant_type: 'password', username: alice.email });
      expectProblem(missing, 'VALIDATION_FAILED');
      expect([...new Set(missing.body.errors.map((e: { field: string }) => e.field))]).toEqual([
        'password',
      ]);
      const twice = await t
        .http()
        .post('/api/v1/auth/token')
        .type('form')
        .send(
          `grant_type=password&username=${encodeURIComponent(alice.email)}&password=a&password=b`,
        );
      expectProblem(twice, 'VALIDATION_FAILED');
    });

    it('takes form bodies nowhere else: the JSON login is unchanged and a form login is 415', async () => {
      const json = await t
        .http()
        .post('/api/v1/auth/login')
        .send({ email: alice.email, password: alice.password })
        .expect(200);
      expect(Object.keys(json.body).sort()).toEqual(['accessToken', 'expiresIn', 'tokenType']);
      const form = await t
        .http()
        .post('/api/v1/auth/login')
        .type('form')
        .send({ email: alice.email, password: alice.password });
      expectProblem(form, 'UNSUPPORTED_MEDIA_TYPE');
    });
  });

  describe('the OpenAPI document', () => {
    it('offers the password flow next to the bearer token on every protected operation', () => {
      expect(doc.components.securitySchemes.oauth2).toMatchObject({
        type: 'oauth2',
        flows: { password: { tokenUrl: '/api/v1/auth/token', scopes: {} } },
      });
      const ops = Object.values(doc.paths).flatMap((p: any) => Object.values(p)) as any[];
      const protectedOps = ops.filter((op) => op.security?.some((s: object) => 'bearer' in s));
      expect(protectedOps.length).toBeGreaterThan(10);
      for (const op of protectedOps) expect(op.security).toContainEqual({ oauth2: [] });
    });

    it('names the demo accounts and uses examples that work on the demo data', () => {
      for (const a of DEMO_ACCOUNTS) expect(doc.info.description).toContain(a.email);
      const schemas = doc.components.schemas;
      const customer = DEMO_ACCOUNTS.find((a) => a.role === 'customer')!;
      expect(schemas.LoginDto.properties.email.example).toBe(customer.email);
      expect(schemas.LoginDto.properties.password.example).toBe(customer.password);
      const sku = schemas.CreateProductDto.properties.sku.example as string;
      const slug = schemas.CreateProductDto.properties.slug.example as string;
      expect(DEMO_PRODUCTS.map((p) => p.sku.toLowerCase())).not.toContain(sku.toLowerCase());
      expect(DEMO_PRODUCTS.map((p) => p.slug)).not.toContain(slug);
      const productId = schemas.OrderLineInputDto.properties.productId.example as string;
      expect(DEMO_PRODUCTS.map((p) => p.id)).toContain(productId);
    });

    it('the examples, sent as they are, succeed on a seeded demo database', async () => {
      await seedDemo(t.db, 'development');
      const schemas = doc.components.schemas;
      const example = (name: string) =>
        Object.fromEntries(
          Object.entries(schemas[name].properties as Record<string, { example?: unknown }>)
            .filter(([, p]) => p.example !== undefined)
            .map(([k, p]) => [k, p.example]),
        );
      const login = await t.http().post('/api/v1/auth/login').send(example('LoginDto'));
      expect(login.status).toBe(200);
      const customer = { Authorization: `Bearer ${login.body.accessToken}` };
      const admin = DEMO_ACCOUNTS.find((a) => a.role === 'admin')!;
      const adminToken = await token({
        grant_type: 'password',
        username: admin.email,
        password: admin.password,
      }).expect(200);
      const created = await t
        .http()
        .post('/api/v1/products')
        .set('Authorization', `Bearer ${adminToken.body.access_token}`)
        .send(example('CreateProductDto'));
      expect(created.status).toBe(201);
      const order = await t
        .http()
        .post('/api/v1/orders')
        .set(customer)
        .send({ items: [example('OrderLineInputDto')] });
      expect(order.status).toBe(201);
      expect(order.body.items[0]).toMatchObject({ sku: 'MUG-LOGO', quantity: 1 });
    });
  });
});
