/**
 * The rules `promtool check metrics` holds Prometheus text exposition to (its parser and its
 * lint), checked here so that a test can fail where promtool is not installed:
 * - every family has one HELP (not empty) and one TYPE, before its samples, which are together;
 * - a counter's name ends in `_total` and nothing else's does; only histograms end in
 *   `_bucket` or have `le`, only histograms and summaries end in `_count`/`_sum`, only
 *   summaries have `quantile`;
 * - a histogram has, per series, `_bucket`s with rising `le` and cumulative counts up to
 *   `le="+Inf"`, which equals its `_count`, and a `_sum`;
 * - names and labels are snake_case, names have no `:`, no type (`_gauge`, `_counter`, …), no
 *   abbreviated unit (`_ms`, `_sec`, `_kb`, …) and no unit other than a base one
 *   (`_milliseconds`, `_kilobytes`, `_minutes` …);
 * - every value is a number, and no series is there twice.
 */

const TYPES = ["counter", "gauge", "histogram", "summary", "untyped", "gaugehistogram"] as const;
type MetricType = (typeof TYPES)[number];

/** The unit each unit word is in base units (promtool's list, which knows more than the ones Sluice uses). */
const BASE_UNITS: Readonly<Record<string, string>> = {
    seconds: "seconds",
    bytes: "bytes",
    meters: "meters",
    metres: "metres",
    grams: "grams",
    joules: "joules",
    volts: "volts",
    amperes: "amperes",
    celsius: "celsius",
    kelvin: "kelvin",
    minutes: "seconds",
    hours: "seconds",
    days: "seconds",
    weeks: "seconds",
    bits: "bytes",
    kelvins: "kelvin",
    fahrenheit: "celsius",
    rankine: "celsius",
    inches: "meters",
    yards: "meters",
    miles: "meters",
    calories: "joules",
    pounds: "grams",
    ounces: "grams",
};
const UNIT_PREFIXES = ["pico", "nano", "micro", "milli", "centi", "deci", "deca", "hecto", "kilo", "kibi", "mega", "mibi", "giga", "gibi", "tera", "tebi", "peta", "pebi"];
const ABBREVIATIONS = ["s", "ms", "us", "ns", "sec", "b", "kb", "mb", "gb", "tb", "pb", "m", "h", "d"];
const TYPE_WORDS = ["counter", "gauge", "histogram", "summary", "gauge_histogram"];

interface Family {
    readonly name: string;
    help?: string;
    helps: number;
    type?: MetricType;
    types: number;
    /** Index of the first sample line, and whether a sample of another family came between two of this one. */
    firstSample?: number;
    lastSample?: number;
    split: boolean;
}

interface Sample {
    readonly family: Family;
    readonly name: string;
    readonly labels: ReadonlyMap<string, string>;
    readonly value: number;
    readonly line: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+-?\d+)?$/;
const LABEL = /\s*([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"\s*(?:,|$)/y;

function parseLabels(text: string | undefined): Map<string, string> | undefined {
    const labels = new Map<string, string>();
    if (text === undefined || text.trim() === "") return labels;
    LABEL.lastIndex = 0;
    while (LABEL.lastIndex < text.length) {
        const match = LABEL.exec(text);
        if (match === null) return undefined;
        labels.set(match[1]!, match[2]!);
    }
    return labels;
}

function parseValue(text: string): number | undefined {
    if (text === "+Inf") return Number.POSITIVE_INFINITY;
    if (text === "-Inf") return Number.NEGATIVE_INFINITY;
    if (text === "NaN") return Number.NaN;
    const value = Number(text);
    return Number.isNaN(value) ? undefined : value;
}

function nameProblems(family: Family): string[] {
    const { name, type } = family;
    const problems: string[] = [];
    const lower = name.toLowerCase();
    const words = lower.split("_");
    const has = (word: string) => lower.includes(`_${word}_`) || lower.endsWith(`_${word}`);
    if (/[a-z][A-Z]/.test(name)) problems.push("metric names should be written in snake_case, not camelCase");
    if (name.includes(":")) problems.push("metric names should not contain ':'");
    for (const word of TYPE_WORDS) if (has(word)) problems.push(`metric name should not include its type '${word}'`);
    if (ABBREVIATIONS.some(has)) problems.push("metric names should not contain abbreviated units");
    for (const word of words) {
        const prefix = UNIT_PREFIXES.find((p) => word.startsWith(p) && BASE_UNITS[word.slice(p.length)] !== undefined);
        const base = prefix === undefined ? BASE_UNITS[word] : BASE_UNITS[word.slice(prefix.length)];
        if (base !== undefined && base !== word) problems.push(`use base unit "${base}" instead of "${word}"`);
    }
    if (type === "counter" && !name.endsWith("_total")) problems.push('counter metrics should have "_total" suffix');
    if (type !== "counter" && type !== "untyped" && name.endsWith("_total")) problems.push('non-counter metrics should not have "_total" suffix');
    if (type !== "histogram" && type !== "untyped" && name.endsWith("_bucket")) problems.push('non-histogram metrics should not have "_bucket" suffix');
    if (type !== "histogram" && type !== "summary" && type !== "untyped" && (name.endsWith("_count") || name.endsWith("_sum")))
        problems.push('non-histogram and non-summary metrics should not have "_count" or "_sum" suffix');
    if (family.help === undefined || family.help.trim() === "") problems.push("no help text");
    if (family.helps > 1) problems.push("more than one HELP line");
    if (family.types !== 1) problems.push(family.types === 0 ? "no TYPE line" : "more than one TYPE line");
    if (family.split) problems.push("its samples are not together");
    return problems;
}

/** The sample names a family of this type may expose. */
function sampleNames(family: Family): string[] {
    if (family.type === "histogram") return [`${family.name}_bucket`, `${family.name}_sum`, `${family.name}_count`];
    if (family.type === "summary") return [family.name, `${family.name}_sum`, `${family.name}_count`];
    return [family.name];
}

function seriesKey(labels: ReadonlyMap<string, string>, without?: string): string {
    return [...labels]
        .filter(([name]) => name !== without)
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([name, value]) => `${name}=${JSON.stringify(value)}`)
        .join(",");
}

function histogramProblems(family: Family, samples: readonly Sample[]): string[] {
    const problems: string[] = [];
    const series = new Map<string, { buckets: { le: number; count: number }[]; count?: number; sum?: number }>();
    for (const sample of samples) {
        const key = seriesKey(sample.labels, "le");
        const entry = series.get(key) ?? { buckets: [] };
        series.set(key, entry);
        if (sample.name.endsWith("_bucket")) {
            const le = sample.labels.get("le");
            const bound = le === undefined ? undefined : parseValue(le);
            if (bound === undefined) problems.push(`${sample.name}{${key}}: a bucket without a numeric "le"`);
            else entry.buckets.push({ le: bound, count: sample.value });
        } else if (sample.name.endsWith("_count")) entry.count = sample.value;
        else entry.sum = sample.value;
    }
    for (const [key, { buckets, count, sum }] of series) {
        const where = `${family.name}{${key}}`;
        for (let i = 1; i < buckets.length; i++) {
            if (buckets[i]!.le <= buckets[i - 1]!.le) problems.push(`${where}: bucket bounds do not rise`);
            if (buckets[i]!.count < buckets[i - 1]!.count) problems.push(`${where}: bucket counts are not cumulative`);
        }
        const last = buckets.at(-1);
        if (last?.le !== Number.POSITIVE_INFINITY) problems.push(`${where}: no le="+Inf" bucket`);
        else if (last.count !== count) problems.push(`${where}: the +Inf bucket (${last.count}) is not _count (${count})`);
        if (count === undefined) problems.push(`${where}: no _count`);
        if (sum === undefined) problems.push(`${where}: no _sum`);
    }
    return problems;
}

/** Every broken rule, as "family: problem" (or "line N: problem"); empty when the text is clean. */
export function expositionProblems(text: string): string[] {
    const problems: string[] = [];
    const families = new Map<string, Family>();
    const familyOf = (name: string) => {
        let family = families.get(name);
        if (family === undefined) families.set(name, (family = { name, helps: 0, types: 0, split: false }));
        return family;
    };
    const samples: Sample[] = [];
    const seen = new Set<string>();
    let current: Family | undefined;
    text.split("\n").forEach((line, index) => {
        const at = index + 1;
        if (line.trim() === "") return;
        const meta = /^#\s+(HELP|TYPE)\s+(\S+)(?:\s(.*))?$/.exec(line);
        if (meta !== null) {
            const family = familyOf(meta[2]!);
            if (family.firstSample !== undefined) problems.push(`${family.name}: ${meta[1]} after its samples (line ${at})`);
            if (meta[1] === "HELP") {
                family.helps++;
                family.help = meta[3] ?? "";
            } else {
                family.types++;
                const type = (meta[3] ?? "").trim();
                if ((TYPES as readonly string[]).includes(type)) family.type = type as MetricType;
                else problems.push(`${family.name}: unknown TYPE "${type}"`);
            }
            return;
        }
        if (line.startsWith("#")) return;
        const match = SAMPLE.exec(line);
        const labels = parseLabels(match?.[2]);
        const value = match === null ? undefined : parseValue(match[3]!);
        if (match === null || labels === undefined || value === undefined) {
            problems.push(`line ${at}: not a sample: ${line}`);
            return;
        }
        const name = match[1]!;
        const family = [...families.values()].find((candidate) => sampleNames(candidate).includes(name));
        if (family === undefined) {
            problems.push(`line ${at}: ${name} has no TYPE before it`);
            return;
        }
        for (const label of labels.keys()) {
            if (/[a-z][A-Z]/.test(label)) problems.push(`${family.name}: label names should be written in snake_case, not camelCase`);
            if (label === "le" && family.type !== "histogram") problems.push(`${family.name}: non-histogram metrics should not have "le" label`);
            if (label === "quantile" && family.type !== "summary") problems.push(`${family.name}: non-summary metrics should not have "quantile" label`);
        }
        const key = `${name}{${seriesKey(labels)}}`;
        if (seen.has(key)) problems.push(`${key}: the same series twice`);
        seen.add(key);
        if (current !== family && family.lastSample !== undefined) family.split = true;
        family.firstSample ??= at;
        family.lastSample = at;
        current = family;
        samples.push({ family, name, labels, value, line: at });
    });
    for (const family of families.values()) {
        problems.push(...nameProblems(family).map((problem) => `${family.name}: ${problem}`));
        if (family.type === "histogram")
            problems.push(
                ...histogramProblems(
                    family,
                    samples.filter((sample) => sample.family === family),
                ),
            );
    }
    return problems;
}

/** Families by name and type, as the exposition declares them. */
export function declaredTypes(text: string): Map<string, string> {
    const types = new Map<string, string>();
    for (const match of text.matchAll(/^# TYPE (\S+) (\S+)$/gm)) types.set(match[1]!, match[2]!);
    return types;
}

/** The value of one sample (`name` with exactly these labels), or undefined. */
export function sampleValue(text: string, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
    const wanted = seriesKey(new Map(Object.entries(labels)));
    for (const line of text.split("\n")) {
        const match = SAMPLE.exec(line);
        if (match?.[1] !== name) continue;
        const parsed = parseLabels(match[2]);
        if (parsed !== undefined && seriesKey(parsed) === wanted) return parseValue(match[3]!);
    }
    return undefined;
}
