/**
 * The demo data: published on purpose (README, Swagger UI examples, the client's demo), seeded only
 * into the embedded development database or when asked (src/database/seed.ts). Plain data, so that
 * examples anywhere can name it without depending on the seeding code.
 */

/**
 * Demo accounts. The passwords are published (README, client/demo) on purpose, so they are only ever
 * given outside production: see seedDemo.
 */
export const DEMO_ACCOUNTS = [
  {
    email: 'admin@example.com',
    name: 'Demo Admin',
    password: 'admin-demo-password',
    role: 'admin',
  },
  {
    email: 'customer@example.com',
    name: 'Demo Customer',
    password: 'customer-demo-password',
    role: 'customer',
  },
] as const;

/**
 * The demo catalogue. Ids are fixed, so that examples (the Swagger UI's order body) name a product
 * that exists on every fresh demo database.
 */
export const DEMO_PRODUCTS = [
  {
    id: '8d5b6a3e-1f0c-4b7e-9a61-2c4f0e9d7a11',
    sku: 'TSHIRT-RED-M',
    slug: 'red-t-shirt-m',
    name: 'Red T-shirt (M)',
    description: 'Organic cotton, medium.',
    priceCents: 1999,
    stock: 50,
  },
  {
    id: '8d5b6a3e-1f0c-4b7e-9a61-2c4f0e9d7a12',
    sku: 'TSHIRT-BLUE-L',
    slug: 'blue-t-shirt-l',
    name: 'Blue T-shirt (L)',
    description: 'Organic cotton, large.',
    priceCents: 1999,
    stock: 40,
  },
  {
    id: '8d5b6a3e-1f0c-4b7e-9a61-2c4f0e9d7a13',
    sku: 'MUG-LOGO',
    slug: 'logo-mug',
    name: 'Logo mug',
    description: 'Stoneware, 350 ml.',
    priceCents: 1250,
    stock: 25,
  },
  {
    id: '8d5b6a3e-1f0c-4b7e-9a61-2c4f0e9d7a14',
    sku: 'POSTER-A2',
    slug: 'a2-poster',
    name: 'A2 poster',
    description: 'Matte print.',
    priceCents: 900,
    stock: 10,
  },
  {
    id: '8d5b6a3e-1f0c-4b7e-9a61-2c4f0e9d7a15',
    sku: 'STICKER-PACK',
    slug: 'sticker-pack',
    name: 'Sticker pack',
    description: 'Ten vinyl stickers.',
    priceCents: 499,
    stock: 200,
  },
  {
    id: '8d5b6a3e-1f0c-4b7e-9a61-2c4f0e9d7a16',
    sku: 'LAST-ONE',
    slug: 'limited-print',
    name: 'Limited print',
    description: 'Only one left: try buying it twice at once.',
    priceCents: 4900,
    stock: 1,
  },
] as const;
