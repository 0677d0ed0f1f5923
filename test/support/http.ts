import type { Response } from 'supertest';
import { PROBLEMS, type ProblemCode } from '../../src/common/problems/problem-catalogue';
import { promoteToAdmin } from '../../src/users/admin-accounts';
import type { TestApp } from './test-app';

/** Asserts a complete RFC 9457 problem: status, content type, code, type, title, requestId. */
export function expectProblem(res: Response, code: ProblemCode): void {
  const def = PROBLEMS[code];
  expect({ status: res.status, code: res.body?.code }).toEqual({ status: def.status, code });
  expect(res.headers['content-type']).toMatch(/^application\/problem\+json/);
  expect(res.body).toMatchObject({
    type: `/problems/${def.slug}`,
    title: def.title,
    status: def.status,
    code,
  });
  expect(typeof res.body.detail).toBe('string');
  expect(res.body.requestId).toBe(res.headers['x-request-id']);
}

let counter = 0;
export const uniqueEmail = (prefix = 'user'): string =>
  `${prefix}-${process.pid}-${Date.now()}-${++counter}@example.com`;

export interface Account {
  id: string;
  email: string;
  password: string;
  token: string;
  auth: { Authorization: string };
}

export async function login(t: TestApp, email: string, password: string): Promise<string> {
  const res = await t.http().post('/api/v1/auth/login').send({ email, password }).expect(200);
  return res.body.accessToken as string;
}

/** Registers a customer through the API (and promotes it to admin directly when asked). */
export async function account(
  t: TestApp,
  role: 'customer' | 'admin' = 'customer',
): Promise<Account> {
  const email = uniqueEmail(role);
  const password = 'a good long password';
  const res = await t
    .http()
    .post('/api/v1/auth/register')
    .send({ email, password, name: role })
    .expect(201);
  if (role === 'admin' && !(await promoteToAdmin(t.db, email)))
    throw new Error(`${email}: not promoted`);
  const token = await login(t, email, password);
  return {
    id: res.body.id as string,
    email,
    password,
    token,
    auth: { Authorization: `Bearer ${token}` },
  };
}
