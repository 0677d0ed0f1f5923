// The README's configuration table, read from src/config/env.ts itself: each variable's meaning is
// the doc comment of its `Env` member (`@default` overrides a default the loader cannot state, e.g.
// one that depends on other variables), and its default and accepted values come from the call that
// loads it in loadEnv (int, oneOf, bool, url, str … ?? default). `npm run readme` writes it; a unit
// test fails while the README's table differs.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { ROOT } from './service-process.mjs';

export const ENV_SOURCE = join(ROOT, 'src/config/env.ts');

const code = (s) => `\`${s}\``;
const number = (n) => n.toLocaleString('en-US');

/** A numeric literal or a product of them (`256 * 1024`, `15_000`); undefined for anything else. */
function numeric(node) {
  if (ts.isNumericLiteral(node)) return Number(node.text);
  if (ts.isParenthesizedExpression(node)) return numeric(node.expression);
  if (ts.isBinaryExpression(node) && node.operatorToken.kind === ts.SyntaxKind.AsteriskToken) {
    const [left, right] = [numeric(node.left), numeric(node.right)];
    return left === undefined || right === undefined ? undefined : left * right;
  }
  return undefined;
}

/** A bound as the README shows it: the number, or the expression as written (another variable). */
const bound = (node) => {
  const n = numeric(node);
  return n === undefined ? code(node.getText()) : number(n);
};

/** The loader call behind a value: `int(src, 'X', …)`, possibly under `?? default` or a method chain. */
function describeLoader(node, locals) {
  let fallback;
  for (;;) {
    if (ts.isIdentifier(node) && locals.has(node.text)) node = locals.get(node.text);
    else if (ts.isParenthesizedExpression(node)) node = node.expression;
    else if (
      ts.isBinaryExpression(node) &&
      node.operatorToken.kind === ts.SyntaxKind.QuestionQuestionToken
    ) {
      fallback ??= node.right;
      node = node.left;
    } else if (ts.isCallExpression(node) && ts.isPropertyAccessExpression(node.expression)) {
      node = node.expression.expression; // `(str(…) ?? '').split(',')…`
    } else break;
  }
  if (!ts.isCallExpression(node) || !ts.isIdentifier(node.expression)) return undefined;
  const [, name, ...rest] = node.arguments;
  if (!name || !ts.isStringLiteral(name)) return undefined;
  const kind = node.expression.text;
  const loader = { variable: name.text, kind };
  if (kind === 'int') {
    const [def, min, max] = rest;
    loader.default = code(numeric(def) ?? def.getText());
    loader.values = `${bound(min)}–${bound(max)}`;
  } else if (kind === 'oneOf') {
    const [allowed, def] = rest;
    loader.default = code(def.text);
    loader.values = allowed.elements.map((e) => code(e.text)).join(', ');
  } else if (fallback !== undefined) {
    if (ts.isStringLiteral(fallback))
      loader.default = fallback.text ? code(fallback.text) : 'empty';
    else if (fallback.kind === ts.SyntaxKind.FalseKeyword) loader.default = code('false');
    else if (fallback.kind === ts.SyntaxKind.TrueKeyword) loader.default = code('true');
    else throw new Error(`env.ts: cannot read the default of ${loader.variable}`);
  } else {
    loader.default = 'unset';
  }
  return loader;
}

/** Doc comment text of a declaration, with its `@default` tag apart. */
function docOf(node) {
  const docs = ts.getJSDocCommentsAndTags(node).filter(ts.isJSDoc);
  const text = (c) => (typeof c === 'string' ? c : (c ?? []).map((p) => p.text).join(''));
  const meaning = docs
    .map((d) => text(d.comment))
    .join(' ')
    .replace(/\s+/g, ' ')
    .trim()
    .replace(/\.$/, '');
  const tag = docs.flatMap((d) => d.tags ?? []).find((t) => t.tagName.text === 'default');
  return { meaning, default: tag ? text(tag.comment).replace(/\s+/g, ' ').trim() : undefined };
}

/** The rows of the table: one per member of `Env`, in its order. */
export function envVariables(source = readFileSync(ENV_SOURCE, 'utf8')) {
  const file = ts.createSourceFile('env.ts', source, ts.ScriptTarget.Latest, true);
  let members;
  let loadEnv;
  file.forEachChild((node) => {
    if (ts.isInterfaceDeclaration(node) && node.name.text === 'Env') members = node.members;
    if (ts.isFunctionDeclaration(node) && node.name?.text === 'loadEnv') loadEnv = node;
  });
  if (!members || !loadEnv) throw new Error('env.ts: no Env interface or loadEnv function');

  const locals = new Map();
  const loaders = new Map();
  const visit = (node) => {
    if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer) {
      locals.set(node.name.text, node.initializer);
    }
    if (
      ts.isReturnStatement(node) &&
      node.expression &&
      ts.isObjectLiteralExpression(node.expression)
    ) {
      for (const p of node.expression.properties) {
        const value = ts.isShorthandPropertyAssignment(p) ? p.name : p.initializer;
        const loader = value && describeLoader(value, locals);
        if (loader) loaders.set(p.name.text, loader);
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(loadEnv);

  return members.map((member) => {
    const name = member.name.text;
    const loader = loaders.get(name);
    if (!loader || loader.variable !== name) {
      throw new Error(`env.ts: ${name} is not loaded as ${name} by a call the table can read`);
    }
    const doc = docOf(member);
    if (!doc.meaning) throw new Error(`env.ts: ${name} has no doc comment (the README shows it)`);
    return {
      name,
      default: doc.default ?? loader.default,
      values: loader.values,
      meaning: doc.meaning,
    };
  });
}

/** The Markdown table (one row per variable), as the README shows it. */
export function envTable(source) {
  const rows = envVariables(source).map(
    (v) => `| ${code(v.name)} | ${v.default} | ${v.values ?? ''} | ${v.meaning} |`,
  );
  return ['| variable | default | accepts | meaning |', '|---|---|---|---|', ...rows].join('\n');
}
