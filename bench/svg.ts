/** An SVG bar chart of a bench report: GB/s of ours, TF.js and the in-run copy roofline per row. */
import type { Report } from './bench';

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;');

export function chart(rep: Report): string {
  const rows = rep.rows;
  const bar = 9,
    gap = 10,
    left = 330,
    width = 460;
  const groupH = 3 * bar + gap;
  const top = 60;
  const h = top + rows.length * groupH + 40;
  const gbps = (bytes: number, ms: number | null) => (ms ? bytes / ms / 1e6 : 0);
  const max = Math.max(1e-9, ...rows.flatMap((r) => [r.gbps, gbps(r.bytes, r.tfjs_ms), r.gbps / r.roofline_fraction]));
  const x = (v: number) => (v / max) * width;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${left + width + 120}" height="${h}" font-family="sans-serif" font-size="11">`,
    `<text x="10" y="20" font-size="14" font-weight="bold">webgpu-batchnorm: effective bandwidth (GB/s), higher is better</text>`,
    `<text x="10" y="38">${esc(rep.adapter)} · ${esc(rep.runtime)} · ${esc(rep.date.slice(0, 10))}</text>`,
    `<rect x="${left}" y="44" width="10" height="8" fill="#1f77b4"/><text x="${left + 14}" y="52">ours</text>`,
    `<rect x="${left + 60}" y="44" width="10" height="8" fill="#ff7f0e"/><text x="${left + 74}" y="52">TF.js WebGPU</text>`,
    `<rect x="${left + 160}" y="44" width="10" height="8" fill="#bbb"/><text x="${left + 174}" y="52">vec4 copy (roofline)</text>`,
  ];
  rows.forEach((r, i) => {
    const y0 = top + i * groupH;
    const copy = r.gbps / r.roofline_fraction;
    const tfg = gbps(r.bytes, r.tfjs_ms);
    parts.push(
      `<text x="${left - 6}" y="${y0 + 2 * bar}" text-anchor="end">${esc(`${r.op} ${r.layout} ${r.shape} v${r.version}`)}</text>`,
    );
    parts.push(
      `<rect x="${left}" y="${y0}" width="${x(r.gbps)}" height="${bar}" fill="#1f77b4"/><text x="${left + x(r.gbps) + 4}" y="${y0 + bar - 1}">${r.gbps.toFixed(1)}</text>`,
    );
    if (tfg)
      parts.push(
        `<rect x="${left}" y="${y0 + bar}" width="${x(tfg)}" height="${bar}" fill="#ff7f0e"/><text x="${left + x(tfg) + 4}" y="${y0 + 2 * bar - 1}">${tfg.toFixed(1)}</text>`,
      );
    parts.push(
      `<rect x="${left}" y="${y0 + 2 * bar}" width="${x(copy)}" height="${bar}" fill="#bbb"/><text x="${left + x(copy) + 4}" y="${y0 + 3 * bar - 1}">${copy.toFixed(1)}</text>`,
    );
  });
  parts.push('</svg>');
  return parts.join('\n');
}
