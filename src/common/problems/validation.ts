import { ValidationPipe, type ValidationError } from '@nestjs/common';
import { ProblemError } from './problem.error';

export interface FieldError {
  field: string;
  message: string;
}

/** Flattens class-validator's tree into `items[0].quantity`-style paths, one entry per failure. */
export function flattenValidationErrors(errors: ValidationError[], parent = ''): FieldError[] {
  const out: FieldError[] = [];
  for (const error of errors) {
    const path = /^\d+$/.test(error.property)
      ? `${parent}[${error.property}]`
      : parent
        ? `${parent}.${error.property}`
        : error.property;
    for (const message of Object.values(error.constraints ?? {})) {
      out.push({ field: path, message });
    }
    if (error.children?.length) out.push(...flattenValidationErrors(error.children, path));
  }
  return out;
}

export function validationProblem(errors: FieldError[]): ProblemError {
  const fields = [...new Set(errors.map((e) => e.field))];
  return new ProblemError(
    'VALIDATION_FAILED',
    `The request has ${errors.length === 1 ? 'an invalid field' : `${errors.length} problems`}: ${fields.join(', ')}.`,
    { errors },
  );
}

/**
 * The one validation pipe: whitelisting with unknown properties rejected (a typo in a field name is an
 * error, not a silent no-op), and every failure reported at once.
 */
export function createValidationPipe(): ValidationPipe {
  return new ValidationPipe({
    whitelist: true,
    forbidNonWhitelisted: true,
    transform: true,
    stopAtFirstError: false,
    validationError: { target: false, value: false },
    exceptionFactory: (errors) => validationProblem(flattenValidationErrors(errors)),
  });
}
