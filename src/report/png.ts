// The main plot as a PNG: ECharts renders it server-side to SVG (no DOM), resvg rasterises the SVG.
import { Resvg } from '@resvg/resvg-js';
import * as echarts from 'echarts';
import type { RunData } from './data.ts';
import { offsetChart } from './charts.ts';

export function chartSvg(option: Record<string, unknown>, width: number, height: number): string {
  const chart = echarts.init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    // the slider and tooltip only make sense on a screen
    chart.setOption({ ...option, dataZoom: [], tooltip: { show: false }, backgroundColor: '#ffffff' });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}

export function offsetPng(res: RunData, width = 1200, height = 600): Uint8Array {
  const svg = chartSvg(offsetChart(res.summary, res.timeline).option, width, height);
  const resvg = new Resvg(svg, { background: '#ffffff', font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans' } });
  return resvg.render().asPng();
}
