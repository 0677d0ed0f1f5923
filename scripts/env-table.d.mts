export declare const ENV_SOURCE: string;

export interface EnvVariable {
  name: string;
  /** As the README shows it: `` `3000` ``, `unset`, `empty`, or the doc comment's `@default`. */
  default: string;
  /** The accepted range or values, when the loader states them. */
  values?: string;
  meaning: string;
}

export declare function envVariables(source?: string): EnvVariable[];
export declare function envTable(source?: string): string;
