// The package ships no types; only what the metrics suite reads is declared (prom2json's shapes, values as text).
declare module "parse-prometheus-text-format" {
  /** One sample of a counter or gauge, or one labelled histogram or summary. */
  export interface ParsedSample {
    labels?: Record<string, string>;
    value?: string;
    buckets?: Record<string, string>;
    count?: string;
    sum?: string;
  }
  /** One metric family: its name, help, type (COUNTER, GAUGE, HISTOGRAM, SUMMARY, UNTYPED) and samples. */
  export interface ParsedFamily {
    name: string;
    help: string;
    type: string;
    metrics: ParsedSample[];
  }
  export default function parsePrometheusTextFormat(text: string): ParsedFamily[];
}
