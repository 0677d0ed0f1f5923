import { Injectable } from '@nestjs/common';
import { hash, verify } from '@node-rs/argon2';

/** Argon2id with the library's defaults (OWASP's recommended parameters). */
export const hashPassword = (password: string): Promise<string> => hash(password);

// Verifying against this when the email is unknown makes a failed login take the same time
// whether or not the account exists.
const decoy = hash('decoy password that matches nothing');

export async function verifyPassword(
  stored: string | undefined,
  password: string,
): Promise<boolean> {
  if (stored === undefined) {
    await verify(await decoy, password).catch(() => false);
    return false;
  }
  return verify(stored, password).catch(() => false);
}

/**
 * The hashing the services use, as a provider: an Argon2id hash costs tens of milliseconds and ~19 MiB,
 * so where it happens in a request matters (tests count its calls to prove cheap checks come first).
 */
@Injectable()
export class PasswordHasher {
  hash(password: string): Promise<string> {
    return hashPassword(password);
  }

  verify(stored: string | undefined, password: string): Promise<boolean> {
    return verifyPassword(stored, password);
  }
}
