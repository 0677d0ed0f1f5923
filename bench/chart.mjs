// The results as a picture, drawn by hand (no dependencies): the goal ratios as horizontal bars
// against their goal lines, then the throughput of every scenario. Used by run.mjs, which writes it
// next to the results as bench/results/<date>.svg.
import { escapeXml } from '../scripts/svg.mjs';

const WIDTH = 1000;
const LABEL_W = 300;
const BAR_X = LABEL_W + 20;
const BAR_W = WIDTH - BAR_X - 150;
/** Where the ratios' values are written: a column of their own, clear of bars and goal lines. */
const VALUE_X = BAR_X + BAR_W + 24;
const FONT = 'font-family="system-ui, -apple-system, Segoe UI, Helvetica, Arial, sans-serif"';
const COLOURS = {
  met: '#2e7d32',
  notMet: '#c62828',
  goal: '#212121',
  grid: '#e0e0e0',
  axis: '#757575',
  service: '#1565c0',
  reference: '#9e9e9e',
  traced: '#ef6c00',
  soak: '#00838f',
  db: '#6a1b9a',
};
const KIND_LABELS = {
  service: 'service',
  reference: 'reference Fastify + pg',
  traced: 'service, tracing on',
  soak: 'service, mixed soak',
  db: 'pgbench, one SQL statement (tps)',
};

const esc = escapeXml;
const num = (n, digits = 0) =>
  n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const text = (x, y, s, attrs = '') => `<text x="${x}" y="${y}" ${attrs}>${esc(s)}</text>`;

/** A "nice" step for about `n` grid lines up to `max`. */
function step(max, n) {
  const raw = max / n;
  const pow = 10 ** Math.floor(Math.log10(raw));
  return [1, 2, 2.5, 5, 10].map((m) => m * pow).find((s) => s >= raw);
}

/** Vertical grid lines with their labels under the panel, from 0 to `max` (x = BAR_X + v·scale). */
function grid(max, top, bottom, scale, format) {
  const s = step(max, 6);
  const out = [];
  for (let v = 0; v <= max + 1e-9; v += s) {
    const x = BAR_X + v * scale;
    out.push(
      `<line x1="${x}" y1="${top}" x2="${x}" y2="${bottom}" stroke="${COLOURS.grid}"/>`,
      text(x, bottom + 16, format(v), `text-anchor="middle" font-size="12" fill="${COLOURS.axis}"`),
    );
  }
  return out;
}

/**
 * @param {object} data
 * @param {string} data.title
 * @param {string} data.subtitle
 * @param {{label: string, detail: string, value: number, goal: number}[]} data.ratios
 * @param {{label: string, value: number, kind: keyof KIND_LABELS}[]} data.rates
 * @returns {string} the SVG document
 */
export function chartSvg({ title, subtitle, ratios, rates }) {
  const out = [];
  let y = 36;
  out.push(text(20, y, title, 'font-size="22" font-weight="600"'));
  y += 22;
  out.push(text(20, y, subtitle, `font-size="13" fill="${COLOURS.axis}"`));

  // Panel 1: the goal ratios.
  y += 40;
  out.push(
    text(
      20,
      y,
      'Goals: throughput ratios (× the baseline; the black line is the goal)',
      'font-size="17" font-weight="600"',
    ),
  );
  y += 14;
  const rowH = 50;
  const maxRatio = Math.max(1.25, ...ratios.map((r) => r.value * 1.1));
  const rScale = BAR_W / maxRatio;
  const top1 = y;
  const bottom1 = y + ratios.length * rowH;
  out.push(...grid(maxRatio, top1, bottom1, rScale, (v) => `${num(v, 2)}×`));
  ratios.forEach((r, i) => {
    const rowY = top1 + i * rowH;
    const barY = rowY + 14;
    const met = r.value >= r.goal;
    const colour = met ? COLOURS.met : COLOURS.notMet;
    const w = Math.max(1, r.value * rScale);
    const gx = BAR_X + r.goal * rScale;
    out.push(
      text(LABEL_W, rowY + 26, r.label, 'text-anchor="end" font-size="15" font-weight="600"'),
      text(LABEL_W, rowY + 43, r.detail, `text-anchor="end" font-size="12" fill="${COLOURS.axis}"`),
      `<rect x="${BAR_X}" y="${barY}" width="${w}" height="24" fill="${colour}" rx="2"/>`,
      `<line x1="${gx}" y1="${rowY + 6}" x2="${gx}" y2="${rowY + 46}" stroke="${COLOURS.goal}" stroke-width="3"/>`,
      text(gx + 5, rowY + 13, `goal ${num(r.goal, 2)}×`, 'font-size="12" font-weight="600"'),
      text(
        VALUE_X,
        rowY + 24,
        `${num(r.value, 2)}×`,
        `font-size="18" font-weight="700" fill="${colour}"`,
      ),
      text(
        VALUE_X,
        rowY + 42,
        met ? '✓ met' : '✗ not met',
        `font-size="13" font-weight="600" fill="${colour}"`,
      ),
    );
  });

  // Panel 2: requests per second.
  y = bottom1 + 62;
  out.push(
    text(
      20,
      y,
      'Requests per second by scenario (pgbench: transactions per second)',
      'font-size="17" font-weight="600"',
    ),
  );
  y += 12;
  const kinds = [...new Set(rates.map((r) => r.kind))];
  let lx = 20;
  for (const kind of kinds) {
    out.push(
      `<rect x="${lx}" y="${y + 4}" width="12" height="12" fill="${COLOURS[kind]}"/>`,
      text(lx + 17, y + 15, KIND_LABELS[kind], 'font-size="12"'),
    );
    lx += 30 + KIND_LABELS[kind].length * 6.6;
  }
  y += 26;
  const rateH = 24;
  const maxRate = Math.max(1, ...rates.map((r) => r.value)) * 1.08;
  const qScale = BAR_W / maxRate;
  const top2 = y;
  const bottom2 = y + rates.length * rateH;
  out.push(...grid(maxRate, top2, bottom2, qScale, (v) => num(v)));
  rates.forEach((r, i) => {
    const rowY = top2 + i * rateH;
    const w = Math.max(1, r.value * qScale);
    out.push(
      text(LABEL_W, rowY + 16, r.label, 'text-anchor="end" font-size="13"'),
      `<rect x="${BAR_X}" y="${rowY + 4}" width="${w}" height="16" fill="${COLOURS[r.kind]}" rx="2"/>`,
      text(BAR_X + w + 6, rowY + 17, num(r.value), 'font-size="12"'),
    );
  });

  const height = bottom2 + 40;
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" ${FONT}>`,
    `<rect width="${WIDTH}" height="${height}" fill="#ffffff"/>`,
    ...out,
    '</svg>',
    '',
  ].join('\n');
}
