/**
 * V8 CPU profiles (`node --cpu-prof`) summarised over a measured window: self time by area
 * (Sluice module folder, npm package, Node internals, GC, wasm) and by function.
 */
import { readFile, readdir } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { fixed } from "./output.js";

/** Functions listed per profile unless asked otherwise. */
export const DEFAULT_TOP = 15;

interface ProfileNode {
    readonly id: number;
    readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number };
}

interface CpuProfile {
    readonly nodes: readonly ProfileNode[];
    readonly startTime: number;
    readonly endTime: number;
    readonly samples: readonly number[];
    readonly timeDeltas: readonly number[];
}

export interface ProfileSummary {
    readonly file: string;
    /** Sampled ms inside the window (all ms when the window did not overlap the profile). */
    readonly sampledMs: number;
    readonly windowed: boolean;
    readonly idleMs: number;
    /** Self ms by area, busiest first. */
    readonly areas: readonly { readonly area: string; readonly ms: number }[];
    /** Self ms by function, busiest first. */
    readonly frames: readonly { readonly frame: string; readonly area: string; readonly ms: number }[];
}

/** A path below a `dist/` folder (the checkout's or a snapshot's), relative to it. */
function distRelative(file: string): string | undefined {
    const at = file.lastIndexOf("/dist/");
    return at < 0 ? undefined : file.slice(at + 6);
}

function areaOf(name: string, url: string): string {
    if (name === "(garbage collector)") return "GC";
    if (name === "(program)") return "(program): V8/native, no JS frame";
    if (name === "(idle)") return "(idle)";
    if (url === "") return "native builtins";
    if (url.startsWith("wasm://")) return "wasm";
    if (url.startsWith("node:")) {
        const path = url.slice(5).split("/");
        return `node:${path[0] === "internal" ? `internal/${path[1] ?? ""}` : path[0]}`.replace(/\.js$/, "");
    }
    const file = url.startsWith("file://") ? fileURLToPath(url) : url;
    const modules = file.lastIndexOf("/node_modules/");
    if (modules >= 0) {
        const parts = file.slice(modules + 14).split("/");
        return `npm:${parts[0]!.startsWith("@") ? `${parts[0]}/${parts[1]}` : parts[0]}`;
    }
    const inRepo = distRelative(file);
    if (inRepo !== undefined) {
        const parts = inRepo.split("/");
        return parts.length > 2 ? `${parts[0]}/${parts[1]}` : parts[0]!;
    }
    return file;
}

function frameName(node: ProfileNode): string {
    const { functionName, url, lineNumber } = node.callFrame;
    const name = functionName === "" ? "(anonymous)" : functionName;
    if (url === "") return name;
    let where = url;
    if (url.startsWith("file://")) {
        const file = fileURLToPath(url);
        const modules = file.lastIndexOf("/node_modules/");
        where = modules >= 0 ? file.slice(modules + 14) : (distRelative(file) ?? file);
    }
    return `${name} ${where}:${lineNumber + 1}`;
}

/** Self time per area and function of one .cpuprofile, over [startUs, endUs] on its clock (CLOCK_MONOTONIC). */
export function summarizeProfile(file: string, profile: CpuProfile, window: { start: number; end: number } | undefined, top = DEFAULT_TOP): ProfileSummary {
    const nodes = new Map(profile.nodes.map((node) => [node.id, node] as const));
    const self = new Map<number, number>();
    const overlaps = window !== undefined && profile.startTime < window.end && profile.endTime > window.start;
    let t = profile.startTime;
    const stamps = profile.timeDeltas.map((delta) => (t += delta));
    for (let i = 0; i < profile.samples.length; i++) {
        const at = stamps[i]!;
        if (overlaps && (at < window.start || at > window.end)) continue;
        const duration = i + 1 < stamps.length ? stamps[i + 1]! - at : 0;
        const id = profile.samples[i]!;
        self.set(id, (self.get(id) ?? 0) + duration);
    }
    const areas = new Map<string, number>();
    const frames = new Map<string, { area: string; us: number }>();
    let total = 0;
    let idle = 0;
    for (const [id, us] of self) {
        const node = nodes.get(id);
        if (node === undefined) continue;
        total += us;
        const area = areaOf(node.callFrame.functionName, node.callFrame.url);
        if (area === "(idle)") {
            idle += us;
            continue;
        }
        areas.set(area, (areas.get(area) ?? 0) + us);
        const name = frameName(node);
        const entry = frames.get(name) ?? { area, us: 0 };
        entry.us += us;
        frames.set(name, entry);
    }
    return {
        file,
        sampledMs: total / 1000,
        windowed: overlaps,
        idleMs: idle / 1000,
        areas: [...areas].map(([area, us]) => ({ area, ms: us / 1000 })).sort((a, b) => b.ms - a.ms),
        frames: [...frames]
            .map(([frame, { area, us }]) => ({ frame, area, ms: us / 1000 }))
            .sort((a, b) => b.ms - a.ms)
            .slice(0, top),
    };
}

/** Every .cpuprofile in `dir`, summarised (largest sampled busy time first). */
export async function summarizeProfiles(dir: string, window: { start: number; end: number } | undefined, top = DEFAULT_TOP): Promise<ProfileSummary[]> {
    const names = (await readdir(dir).catch(() => [] as string[])).filter((name) => name.endsWith(".cpuprofile")).sort();
    const summaries: ProfileSummary[] = [];
    for (const name of names) {
        const profile = JSON.parse(await readFile(join(dir, name), "utf8")) as CpuProfile;
        summaries.push(summarizeProfile(join(dir, name), profile, window, top));
    }
    return summaries.sort((a, b) => b.sampledMs - b.idleMs - (a.sampledMs - a.idleMs));
}

export function formatProfile(summary: ProfileSummary, label: string): string {
    const busy = summary.sampledMs - summary.idleMs;
    const pct = (ms: number) => `${fixed((ms / Math.max(busy, 1e-9)) * 100, 1)}%`;
    const out = [
        `${label}: ${fixed(summary.sampledMs / 1000, 1)} s sampled${summary.windowed ? " in the window" : " (whole process: the window did not overlap)"}, ` +
            `busy ${fixed(busy / 1000, 1)} s (${fixed((busy / Math.max(summary.sampledMs, 1e-9)) * 100, 0)}%), idle ${fixed(summary.idleMs / 1000, 1)} s`,
        `  by area (self time, % of busy): ${summary.areas
            .filter((a) => a.ms / Math.max(busy, 1e-9) >= 0.01)
            .map((a) => `${a.area} ${pct(a.ms)}`)
            .join(", ")}`,
        "  top functions (self):",
        ...summary.frames.map((f) => `    ${pct(f.ms).padStart(6)}  ${fixed(f.ms, 0).padStart(7)} ms  ${f.frame}  [${f.area}]`),
    ];
    return out.join("\n");
}
