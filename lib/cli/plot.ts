// Line charts as SVG (one panel per series group), for loss curves.
export interface Series {
  label: string;
  color: string;
  points: [number, number][];
}

export interface Panel {
  title: string;
  series: Series[];
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

export function lineChartsSvg(panels: Panel[], opts: { width?: number; height?: number; xLabel?: string; yLabel?: string; title?: string } = {}): string {
  const W = opts.width ?? 360, H = opts.height ?? 260, pad = { l: 48, r: 12, t: 28, b: 36 };
  const top = opts.title ? 28 : 0;
  const total = W * panels.length;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${total}" height="${H + top}" font-family="sans-serif" font-size="11">`,
    `<rect width="${total}" height="${H + top}" fill="white"/>`,
  ];
  if (opts.title) parts.push(`<text x="${total / 2}" y="18" text-anchor="middle" font-size="14">${esc(opts.title)}</text>`);
  panels.forEach((p, pi) => {
    const x0 = pi * W, y0 = top;
    const all = p.series.flatMap((s) => s.points).filter(([, y]) => Number.isFinite(y));
    if (!all.length) return;
    const xmin = Math.min(...all.map((q) => q[0])), xmax = Math.max(...all.map((q) => q[0]));
    const ymin = Math.min(...all.map((q) => q[1])), ymax = Math.max(...all.map((q) => q[1]));
    const sx = (x: number) => x0 + pad.l + ((x - xmin) / (xmax - xmin || 1)) * (W - pad.l - pad.r);
    const sy = (y: number) => y0 + H - pad.b - ((y - ymin) / (ymax - ymin || 1)) * (H - pad.t - pad.b);
    parts.push(`<text x="${x0 + W / 2}" y="${y0 + 16}" text-anchor="middle" font-size="12">${esc(p.title)}</text>`);
    parts.push(`<line x1="${sx(xmin)}" y1="${sy(ymin)}" x2="${sx(xmax)}" y2="${sy(ymin)}" stroke="#888"/>`);
    parts.push(`<line x1="${sx(xmin)}" y1="${sy(ymin)}" x2="${sx(xmin)}" y2="${sy(ymax)}" stroke="#888"/>`);
    for (let k = 0; k <= 4; k++) {
      const yv = ymin + ((ymax - ymin) * k) / 4;
      parts.push(`<text x="${x0 + pad.l - 4}" y="${sy(yv) + 4}" text-anchor="end">${yv.toFixed(2)}</text>`);
      const xv = xmin + ((xmax - xmin) * k) / 4;
      parts.push(`<text x="${sx(xv)}" y="${y0 + H - pad.b + 14}" text-anchor="middle">${Math.round(xv)}</text>`);
    }
    if (opts.xLabel) parts.push(`<text x="${x0 + W / 2}" y="${y0 + H - 6}" text-anchor="middle">${esc(opts.xLabel)}</text>`);
    p.series.forEach((s, si) => {
      const pts = s.points.filter(([, y]) => Number.isFinite(y)).map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ');
      parts.push(`<polyline fill="none" stroke="${s.color}" stroke-width="1.5" points="${pts}"/>`);
      parts.push(`<text x="${x0 + W - pad.r - 4}" y="${y0 + pad.t + 12 * si}" text-anchor="end" fill="${s.color}">${esc(s.label)}</text>`);
    });
  });
  parts.push('</svg>');
  return parts.join('\n');
}

// Exponential moving average, for readable curves.
export function smooth(points: [number, number][], alpha = 0.1): [number, number][] {
  let m = NaN;
  return points.map(([x, y]) => {
    m = Number.isNaN(m) ? y : alpha * y + (1 - alpha) * m;
    return [x, m];
  });
}
