// The package's exports map has no "types" for its CommonJS entry; this mirrors its src/index.d.ts.
declare module 'marked-gfm-heading-id' {
  import type { MarkedExtension } from 'marked';
  export function gfmHeadingId(options?: {
    prefix?: string;
    globalSlugs?: boolean;
  }): MarkedExtension;
}
