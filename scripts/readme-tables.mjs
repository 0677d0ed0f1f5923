// `npm run readme`: rewrites the README's generated sections (state diagram, transition table,
// problem catalogue from the built code; configuration table from src/config/env.ts); unit tests
// fail until they match.
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { envTable } from './env-table.mjs';
import { ROOT } from './service-process.mjs';

const state = await import(join(ROOT, 'dist/src/orders/order-state.js'));
const catalogue = await import(join(ROOT, 'dist/src/common/problems/problem-catalogue.js'));
const file = join(ROOT, 'README.md');
let text = readFileSync(file, 'utf8');

function put(marker, content) {
  const at = text.indexOf(`<!-- ${marker}:start -->`);
  const end = text.indexOf(`<!-- ${marker}:end -->`, at);
  if (at < 0 || end < 0) throw new Error(`README.md has no ${marker} section`);
  text = `${text.slice(0, at)}<!-- ${marker}:start -->\n${content}\n${text.slice(end)}`;
}
const table = (t) => `<!-- prettier-ignore-start -->\n${t}\n<!-- prettier-ignore-end -->`;

put('diagram', `\n\`\`\`\n${state.STATE_DIAGRAM}\n\`\`\`\n`);
put('transitions', table(state.transitionTable()));
put('problems', table(catalogue.catalogueTable()));
put('env', table(envTable()));
writeFileSync(file, text);
console.log('README.md: diagram, transitions, problems and configuration regenerated');
