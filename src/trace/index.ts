// Observability: model events as a KVM host's trace_pipe, bpftrace-style path counts, Perfetto JSON.
export { KERNEL_EVENTS, type KernelEvent, eventPath, kernelEvent } from './kernel-events.ts';
export { chromeTrace, type ChromeTrace, type ChromeTraceEvent } from './perfetto.ts';
export { tracePipeLines, traceTimestamp } from './pipe.ts';
export { bootOrderNames, nameMatcher, runTrace, type TraceRun, type TraceRunOptions } from './run.ts';
export { countPaths, formatPathCounts, type PathCount } from './stacks.ts';
