// `--timeline FILE`: the machine's timeline (core's `m.timeline`) of a run, written as Chrome
// trace-event JSON (Perfetto, chrome://tracing) or, for a .txt/.trace/.ftrace file, as ftrace text.
// `migrate` and `compact` record their measured run; `bench` records each case (or the one
// `--timeline-case` chooses), and its HTML report links the files.
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import type { Machine, TimelineCapture } from '@pagemig/core';
import type { Command } from 'commander';
import { checkWritable } from './output_paths.js';

/** A timeline file written by a command. */
export interface TimelineFile {
  /** The bench case it records (bench only). */
  case?: string;
  /** Where it was written: absolute for migrate/compact; for bench, relative to the report (or results) file. */
  file: string;
  format: 'chrome' | 'ftrace';
  /** Spans and instants recorded, and records the buffer had no room for. */
  events: number;
  dropped: number;
}

const FTRACE = /\.(txt|trace|ftrace)$/i;

/** Chrome trace-event JSON, or ftrace text for a .txt, .trace or .ftrace file. */
export function timelineFormat(file: string): 'chrome' | 'ftrace' {
  return FTRACE.test(file) ? 'ftrace' : 'chrome';
}

/** Adds `--timeline <file>` (and, for bench, `--timeline-case <id>`). */
export function addTimelineFlag(cmd: Command, bench = false): Command {
  cmd.option(
    '--timeline <file>',
    bench
      ? 'record a timeline of every case (or the --timeline-case one) into <file> with the case id before its extension: Chrome trace JSON for Perfetto/chrome://tracing, ftrace text for .txt/.trace'
      : 'record a timeline of the run into <file>: Chrome trace JSON for Perfetto/chrome://tracing, ftrace text for .txt/.trace',
  );
  if (bench)
    cmd.option(
      '--timeline-case <id>',
      'with --timeline: record only the first case whose id contains <id> (e.g. folio.ptdma-x2.64MiB-4KiB), into <file> as given',
    );
  return cmd;
}

/** `--timeline`'s file must be writable: checked before the command runs anything. */
export function checkTimelineFlag(file: string | undefined, cwd: string): void {
  if (file !== undefined) checkWritable('--timeline', file, cwd);
}

/** Writes a capture; returns what was written. */
export function writeCapture(cap: TimelineCapture, abs: string, shown = abs): TimelineFile {
  const format = timelineFormat(abs);
  writeFileSync(abs, format === 'ftrace' ? cap.toFtrace() : `${cap.toChromeJson()}\n`);
  return { file: shown, format, events: cap.events.length, dropped: cap.dropped };
}

/**
 * Runs `fn` with the machine's timeline recording when `file` is given (checked writable first),
 * and writes it; the timeline is stopped whatever `fn` does.
 */
export async function withTimeline<T>(
  m: Machine,
  file: string | undefined,
  cwd: string,
  fn: () => Promise<T>,
): Promise<{ value: T; timeline: TimelineFile | null }> {
  if (file === undefined) return { value: await fn(), timeline: null };
  const abs = checkWritable('--timeline', file, cwd);
  m.timeline.start();
  let cap: TimelineCapture | undefined;
  try {
    const value = await fn();
    cap = m.timeline.stop();
    return { value, timeline: writeCapture(cap, abs) };
  } finally {
    if (!cap && m.timeline.recording) m.timeline.stop();
  }
}

/** One line for a command's text output. */
export function timelineLine(t: TimelineFile): string {
  const how =
    t.format === 'chrome'
      ? 'open it in https://ui.perfetto.dev or chrome://tracing'
      : 'ftrace text; pagemig parses it with parseTraceLines';
  return `timeline: ${t.file}${t.case ? ` (${t.case})` : ''}: ${t.events} events${t.dropped ? `, ${t.dropped} dropped` : ''}; ${how}\n`;
}

/** A file-name-safe case id. */
export function caseId(...parts: (string | number)[]): string {
  return parts
    .map((p) =>
      String(p)
        .replace(/[^A-Za-z0-9_-]+/g, '-')
        .replace(/^-|-$/g, ''),
    )
    .join('.');
}

/** `dir/run.json` and case `folio.kernel.16MiB-4KiB` → `dir/run.folio.kernel.16MiB-4KiB.json`. */
export function caseFile(file: string, id: string): string {
  const ext = path.extname(file);
  return `${file.slice(0, file.length - ext.length)}.${id}${ext || '.json'}`;
}

interface BenchTimelines {
  abs: string;
  only: string | undefined;
  written: (TimelineFile & { abs: string })[];
}

let bench: BenchTimelines | null = null;

/**
 * `pagemig bench --timeline`: from now on `benchCase` records the cases (null turns it off).
 * Returns the absolute file path (checked writable).
 */
export function recordBenchTimelines(o: { file: string; only?: string; cwd: string } | null): string | null {
  if (o === null) {
    bench = null;
    return null;
  }
  const abs = checkWritable('--timeline', o.file, o.cwd);
  bench = { abs, only: o.only, written: [] };
  return abs;
}

/** The files `benchCase` wrote so far, their paths relative to `relativeTo` (a directory). */
export function benchTimelinesWritten(relativeTo: string): TimelineFile[] {
  return (bench?.written ?? []).map(({ abs, ...t }) => ({
    ...t,
    file: path.relative(relativeTo, abs) || abs,
  }));
}

/** Runs one bench case; while `--timeline` is on (and the case is chosen), records and writes it. */
export async function benchCase<T>(m: Machine, id: string, fn: () => Promise<T>): Promise<T> {
  const b = bench;
  if (b === null || m.timeline.recording) return fn();
  if (b.only !== undefined && (b.written.length > 0 || !id.includes(b.only))) return fn();
  const abs = b.only !== undefined ? b.abs : caseFile(b.abs, id);
  m.timeline.start();
  let cap: TimelineCapture | undefined;
  try {
    const value = await fn();
    cap = m.timeline.stop();
    b.written.push({ ...writeCapture(cap, abs), case: id, abs });
    return value;
  } finally {
    if (!cap && m.timeline.recording) m.timeline.stop();
  }
}

const esc = (s: string) =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** The report's section linking the timeline files of the run (empty without any). */
export function timelinesHtml(list: readonly TimelineFile[] | undefined): string {
  if (!list?.length) return '';
  const items = list
    .map(
      (t) =>
        `<li><a href="${esc(t.file)}" download>${esc(t.file)}</a>${t.case ? ` — ${esc(t.case)}` : ''} (${t.events} events${t.dropped ? `, ${t.dropped} dropped` : ''}, ${t.format === 'chrome' ? 'Chrome trace JSON' : 'ftrace text'})</li>`,
    )
    .join('');
  return `<section id="timelines"><h2>Timelines</h2><p>The runs were recorded with <code>--timeline</code>: drag a JSON file onto <a href="https://ui.perfetto.dev">ui.perfetto.dev</a> or load it in chrome://tracing to see each batch's unmap, flush, copy and move, the DMA channels' descriptors and the workers' shares on one clock.</p><ul>${items}</ul></section>`;
}
