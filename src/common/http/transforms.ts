/** class-transformer helper: trims strings, leaves anything else for the validators to reject. */
export const trim = ({ value }: { value: unknown }): unknown =>
  typeof value === 'string' ? value.trim() : value;
