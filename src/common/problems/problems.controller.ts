import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { Controller, Get, Header, Param } from '@nestjs/common';
import { Marked } from 'marked';
import { gfmHeadingId } from 'marked-gfm-heading-id';
import { ApiExcludeController } from '@nestjs/swagger';
import { PROBLEM_CODES, PROBLEMS, problemBySlug } from './problem-catalogue';
import { Public } from '../access';
import { notFound } from './problem.error';

const escape = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`).replace(/`([^`]+)`/g, '<code>$1</code>');

const page = (title: string, body: string): string => `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${title}</title>
<style>body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem}
code{background:#f3f3f3;padding:0 .2em}table{border-collapse:collapse}td,th{padding:.2em .6em;text-align:left}</style>
</head><body>${body}</body></html>`;

/** The client guide, shipped with the service (the Dockerfile copies docs/). */
const GUIDE = resolve('docs/handling-conflicts.md');
let guideHtml: Promise<string> | undefined;

function renderGuide(): Promise<string> {
  guideHtml ??= readFile(GUIDE, 'utf8').then((md) =>
    page('Handling errors and conflicts', new Marked(gfmHeadingId()).parse(md, { async: false })),
  );
  return guideHtml;
}

/**
 * The human-readable page behind every problem `type` (RFC 9457 §3.1.1), generated from the catalogue.
 * Served at the root, outside /api/v1, so that `type: "/problems/<slug>"` resolves.
 */
@ApiExcludeController()
@Public()
@Controller('problems')
export class ProblemsController {
  @Get()
  @Header('Content-Type', 'text/html; charset=utf-8')
  index(): string {
    const rows = PROBLEM_CODES.map((code) => {
      const p = PROBLEMS[code];
      return `<tr><td>${p.status}</td><td><a href="/problems/${p.slug}"><code>${code}</code></a></td><td>${escape(p.title)}</td></tr>`;
    }).join('');
    return page(
      'Problem types',
      `<h1>Problem types</h1><p>Every error this service answers is <code>application/problem+json</code> (RFC 9457) with one of these codes. <a href="/problems/guide">How a client handles each of them</a>.</p><table><tr><th>status</th><th>code</th><th>title</th></tr>${rows}</table>`,
    );
  }

  /** docs/handling-conflicts.md, rendered: what a client does about each code, with examples. */
  @Get('guide')
  @Header('Content-Type', 'text/html; charset=utf-8')
  guide(): Promise<string> {
    return renderGuide();
  }

  @Get(':slug')
  @Header('Content-Type', 'text/html; charset=utf-8')
  show(@Param('slug') slug: string): string {
    const found = problemBySlug(slug);
    if (!found) throw notFound(`Problem type "${slug.slice(0, 64)}"`);
    const [code, p] = found;
    const members = p.members.length
      ? `<h2>Extension members</h2><ul>${p.members.map((m) => `<li><code>${m}</code></li>`).join('')}</ul>`
      : '';
    return page(
      p.title,
      `<p><a href="/problems">All problem types</a></p>
<h1>${escape(p.title)}</h1>
<p>HTTP ${p.status} · <code>code: "${code}"</code> · <code>type: "/problems/${p.slug}"</code></p>
<h2>What happened</h2><p>${escape(p.explanation)}</p>
<h2>What to do</h2><p>${escape(p.resolution)}</p>${members}
<p>Client guide, with examples: <a href="/problems/guide#${code.toLowerCase()}">handling ${code}</a>.</p>
<p>Every problem body also carries <code>type</code>, <code>title</code>, <code>status</code>, <code>detail</code>, <code>instance</code>, <code>code</code> and <code>requestId</code>.</p>`,
    );
  }
}
