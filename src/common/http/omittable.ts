import { ValidateIf } from 'class-validator';

/**
 * An optional body field: it may be left out, but a value that is present, `null` included, is
 * validated like any other. class-validator's `@IsOptional()` also skips `null`, which let
 * `{"priceCents": null}` through to the database; no field of this API takes `null`.
 */
export const Omittable = (): PropertyDecorator =>
  ValidateIf((_object: object, value: unknown) => value !== undefined);
