// Reports: a self-contained HTML file with plots and tables, and the main plot as PNG.
export { type ChartSpec, hostChart, monotonicChart, offsetChart, rateChart, reportCharts, timeUnitFor, unitFor } from './charts.ts';
export { parseTimelineCsv, type RunData, readRunDir, TIMELINE_HEADER } from './data.ts';
export { echartsSource, escapeHtml, REPORT_CSS, type ReportOptions, reportHtml, scriptJson } from './html.ts';
export { chartSvg, offsetPng } from './png.ts';
export { type SharingTable, sharingTable } from './sharing.ts';
export { type Verdict, type VerdictLevel, verdicts, vmVerdict } from './verdict.ts';
export { type OutputFile, writeFileAtomic, writeFilesAtomic } from './write.ts';
