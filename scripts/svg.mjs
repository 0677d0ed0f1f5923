// What the hand-drawn SVG charts share (bench/chart.mjs, scripts/dashboard-snapshot.mjs).

/** Text made safe for SVG/XML content and attribute values. */
export const escapeXml = (s) =>
  String(s)
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;');
