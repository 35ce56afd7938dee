/**
 * Charts drawn on the server as inline SVG: no chart library, no script, and
 * presentation attributes only (the page's CSP allows no inline style).
 *
 * @module
 */
import { type Html, html } from "./html.ts";

/** One bar. */
export interface Bar {
  readonly label: string;
  readonly value: number;
}

function fmt(n: number): string {
  if (Number.isInteger(n)) return String(n);
  return n >= 100 ? n.toFixed(0) : n.toFixed(2);
}

/** Horizontal bars, one per item, largest first; at most `max` items. */
export function barChart(title: string, items: readonly Bar[], unit = "", max = 12): Html {
  const rows = [...items].sort((a, b) => b.value - a.value).slice(0, max);
  if (rows.length === 0) return html`<p class="muted">No data for ${title.toLowerCase()}.</p>`;
  const width = 640, labelW = 200, rowH = 22, valueW = 80;
  const top = Math.max(...rows.map((r) => r.value), 1e-9);
  const height = rows.length * rowH + 8;
  const barMax = width - labelW - valueW;
  return html`
    <svg class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}"
      role="img" aria-label="${title}"><title>${title}</title>${rows.map((r, i) => {
        const y = 4 + i * rowH;
        const w = Math.max(1, Math.round((r.value / top) * barMax));
        const label = r.label.length > 28 ? r.label.slice(0, 27) + "…" : r.label;
        return html`
          <text x="${labelW - 6}" y="${y + 15}" text-anchor="end" class="label">${label}</text>
          <rect x="${labelW}" y="${y + 3}" width="${w}" height="${rowH - 6}" class="bar">
            <title>${r.label}: ${fmt(r.value)}${unit}</title>
          </rect>
          <text x="${labelW + w + 6}" y="${y + 15}" class="value">${fmt(r.value)}${unit}</text>
        `;
      })}</svg>
  `;
}

/** Vertical bars over consecutive buckets (entries per minute), oldest left. */
export function columnChart(title: string, counts: readonly number[], caption: string): Html {
  const width = 640, height = 120, pad = 18;
  const top = Math.max(...counts, 1);
  const step = (width - 2 * pad) / Math.max(1, counts.length);
  return html`
    <svg class="chart" viewBox="0 0 ${width} ${height}" width="${width}" height="${height}"
      role="img"
      aria-label="${title}"><title>${title}</title>${counts.map((n, i) => {
        const h = Math.round((n / top) * (height - 2 * pad));
        const x = Math.round(pad + i * step);
        return html`
          <rect x="${x}" y="${height - pad - h}" width="${Math.max(
            1,
            Math.floor(step) - 2,
          )}" height="${h}" class="bar">
            <title>${n}</title>
          </rect>
        `;
      })}<text x="${pad}" y="${height - 3}" class="label">${caption}</text><text x="${width -
        pad}" y="12" text-anchor="end" class="value">max ${top}/min</text></svg>
  `;
}
