"""``python -m benchmarks [--quick]``: run every benchmark, print a table, write JSON lines.

Micro benchmarks measure CPU time of this thread (``time.thread_time``), medians over
interleaved repeats, so other busy processes on the machine disturb them less; end to
end and capacity use wall-clock time. Ratios are what to compare across machines.
``--quick`` runs everything small, once, and checks only that it works.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from benchmarks import capacity, corpus, e2e, micro, micro_msgpack

RESULTS = Path(__file__).resolve().parent / "results" / "latest.jsonl"
_BIN = "Scripts" if sys.platform == "win32" else "bin"
DEFAULT_VC_PYTHON = (Path(__file__).resolve().parents[1] / ".interop" / "voxta-client-venv"
                     / _BIN / "python")

TARGETS: dict[str, tuple[str, float, str]] = {
    # name: (what, target, direction) ; ">=" means the measured ratio must be at least it
    "conversation_vs_loop": ("conversation: ours vs loop 2", 5.0, ">="),
    "conversation_of_floor": ("conversation: ours / floor", 1.4, "<="),
    "pings_vs_loop": ("pings: ours vs loop 2", 17.0, ">="),
    "characters_vs_loop": ("charactersListLoaded: ours vs loop 2", 2.7, ">="),
    "encode_vs_json": ("encode send: ours vs json.dumps+uuid4", 8.0, ">="),
    "tiny1_wsproto_vs_vc": ("tiny, 1/msg, wsproto engine vs voxta-client", 1.0, ">="),
    "tiny1_websockets_vs_vc": ("tiny, 1/msg, websockets engine vs voxta-client", 1.6, ">="),
    "tiny1_websockets_vs_bare": ("tiny, 1/msg, websockets engine vs bare loop", 1.2, ">="),
    "tiny16_wsproto_vs_vc": ("tiny, 16/msg, wsproto engine vs voxta-client", 2.5, ">="),
    "tiny16_websockets_vs_vc": ("tiny, 16/msg, websockets engine vs voxta-client", 3.0, ">="),
    "e2e_vs_voxta_client": ("mock, chunks/s: ours vs voxta-client", 3.0, ">="),
    "capacity_failures": ("capacity: failures", 0.0, "<="),
    "capacity_kib_per_idle": ("capacity: KiB per idle connection", 64.0, "<="),
}


def _args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="small sizes, one repeat")
    parser.add_argument("--repeats", type=int, default=None, help="interleaved repeats")
    parser.add_argument("--only", nargs="*", default=None,
                        choices=["decode", "encode", "e2e", "capacity"],
                        help="run only these parts")
    parser.add_argument("--clients", type=int, default=None, help="capacity: clients")
    parser.add_argument("--vc-python", default=os.environ.get("VOXTA_CLIENT_PYTHON"),
                        help="python of a virtualenv with voxta-client==0.2.0 "
                             f"(default: {DEFAULT_VC_PYTHON} if it exists)")
    parser.add_argument("--output", type=Path, default=RESULTS, help="JSON-lines file")
    return parser.parse_args(argv)


def _ratio_lines(name: str, rows: dict[str, micro.Row], messages: int) -> list[str]:
    ours = rows[micro.OURS].seconds
    out = []
    for row in rows.values():
        per = row.seconds / messages * 1e9
        out.append(f"  {row.path:<42} {row.seconds * 1e3:10.1f} ms {per:9.0f} ns/msg "
                   f"{row.seconds / ours:7.2f}x")
    return [f"{name} (time, per message, time relative to ours)", *out]


def _rate(value: float | None) -> str:
    return f"{value:10,.0f}" if value is not None else f"{'n/a':>10}"


def _times(value: float | None) -> str:
    return f"{value:6.2f}x" if value is not None else f"{'n/a':>7}"


def _tiny_table(table: dict[int, dict[str, e2e.Rates]], chunks: int,
                records: list[dict[str, Any]], ratios: dict[str, float]) -> list[str]:
    """The end-to-end table against the tiny server, ratios per client CPU-second."""
    lines = [f"end to end against a server that costs almost nothing: one reply of {chunks} "
             "chunks, chunks per CPU-second of the client's process (and per second)"]
    for per_message, row in table.items():
        vc, bare = row[e2e.VC], row[e2e.BARE]
        lines.append(f"  {per_message} record(s) per WebSocket message")
        for name, rates in row.items():
            records.append({"kind": "e2e-tiny", "per_message": per_message, "chunks": chunks,
                            **rates.record()})
            line = (f"    {e2e.LABELS[name]:<30} {_rate(rates.cpu)} /cpu-s "
                    f"{_rate(rates.wall)} /s")
            if name in e2e.VOXTA:
                line += (f"  vs voxta-client {_times(e2e.ratio(rates, vc))}"
                         f"  vs bare {_times(e2e.ratio(rates, bare))}")
                engine = name.removeprefix("voxta-")
                for other, key in ((vc, f"tiny{per_message}_{engine}_vs_vc"),
                                   (bare, f"tiny{per_message}_{engine}_vs_bare")):
                    value = e2e.ratio(rates, other)
                    if key in TARGETS and value is not None:
                        ratios[key] = value
            if rates.unavailable is not None:
                line += f"  ({rates.unavailable})"
            lines.append(line)
    return lines


def _mock_table(table: dict[str, e2e.Rates], chunks: int, records: list[dict[str, Any]],
                ratios: dict[str, float]) -> list[str]:
    """The end-to-end table against the mock (16 records per WebSocket message)."""
    lines = [f"end to end against the mock: one reply of {chunks} chunks, 16 per WebSocket "
             "message (chunks per second; per CPU-second of the client's process)"]
    vc = table[e2e.VC]
    for name, rates in table.items():
        records.append({"kind": "e2e-mock", "chunks": chunks, **rates.record()})
        line = f"  {e2e.LABELS[name]:<32} {_rate(rates.wall)} /s {_rate(rates.cpu)} /cpu-s"
        if name in e2e.VOXTA and rates.wall is not None and vc.wall is not None:
            line += (f"  vs voxta-client {rates.wall / vc.wall:6.2f}x per second, "
                     f"{_times(e2e.ratio(rates, vc))} per CPU-second")
        if rates.unavailable is not None:
            line += f"  ({rates.unavailable})"
        lines.append(line)
    ours, vc_wall = table["voxta-wsproto"].wall, vc.wall
    if ours is not None and vc_wall is not None:
        ratios["e2e_vs_voxta_client"] = ours / vc_wall
    return lines


def _took(lines: list[str], part: str, parts: set[str], started: float) -> None:
    if part in parts:
        lines.append(f"  ({part} took {time.monotonic() - started:.0f} s)")


def main(argv: list[str] | None = None) -> int:
    args = _args(argv)
    quick = args.quick
    repeats = args.repeats or (1 if quick else 9)
    parts = set(args.only or ["decode", "encode", "e2e", "capacity"])
    vc_python = args.vc_python or (str(DEFAULT_VC_PYTHON) if DEFAULT_VC_PYTHON.exists()
                                   else None)
    records: list[dict[str, Any]] = []
    ratios: dict[str, float] = {}
    lines: list[str] = []
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    meta = {"time": stamp, "python": platform.python_version(), "machine": platform.machine(),
            "cpus": os.cpu_count(), "quick": quick, "repeats": repeats}

    started = time.monotonic()
    if "decode" in parts:
        workloads = [
            corpus.conversation(2_000 if quick else 100_000),
            corpus.pings(2_000 if quick else 100_000),
            corpus.characters_list(2 if quick else 20),
        ]
        for work in workloads:
            micro.check_corpus(work)
            paths = {**micro.decode_paths(work), **micro_msgpack.decode_paths(work)}
            rows = micro.compare(work.name, paths, repeats)
            lines += _ratio_lines(f"{work.name}: {work.messages} messages in "
                                  f"{len(work.frames)} frames, {work.size / 1e6:.1f} MB", rows,
                                  work.messages)
            for row in rows.values():
                records.append({"kind": "decode", **asdict(row), "messages": work.messages,
                                "frames": len(work.frames), "bytes": work.size})
            ours, loop = rows[micro.OURS].seconds, rows[micro.LOOP].seconds
            key = {"conversation": "conversation", "pings": "pings",
                   "charactersListLoaded": "characters"}[work.name]
            ratios[f"{key}_vs_loop"] = loop / ours
            if key == "conversation":
                ratios["conversation_of_floor"] = ours / rows[micro.FLOOR].seconds

    _took(lines, "decode", parts, started)
    started = time.monotonic()
    if "encode" in parts:
        count = 2_000 if quick else 100_000
        rows = micro.compare("encode", micro.encode_paths(count), repeats)
        lines.append(f"encode a send, {count} times (time, per message, relative to ours)")
        for row in rows.values():
            lines.append(f"  {row.path:<42} {row.seconds * 1e3:10.1f} ms "
                         f"{row.seconds / count * 1e9:9.0f} ns/msg "
                         f"{row.seconds / rows[micro.ENCODE_OURS].seconds:7.2f}x")
            records.append({"kind": "encode", **asdict(row)})
        ratios["encode_vs_json"] = (rows[micro.ENCODE_JSON].seconds
                                    / rows[micro.ENCODE_OURS].seconds)

    _took(lines, "encode", parts, started)
    started = time.monotonic()
    if "e2e" in parts:
        chunks = 300 if quick else 20_000
        e2e_repeats = 1 if quick else max(3, repeats // 2)
        lines += _tiny_table(e2e.run_tiny(chunks, e2e_repeats, vc_python), chunks, records,
                             ratios)
        lines += _mock_table(e2e.run_mock(chunks, e2e_repeats, vc_python), chunks, records,
                             ratios)

    _took(lines, "e2e", parts, started)
    started = time.monotonic()
    if "capacity" in parts:
        clients = args.clients or (20 if quick else 1_000)
        outcome = capacity.run(clients)
        records.append({"kind": "capacity", **asdict(outcome)})
        lines.append(f"mock capacity: {clients} concurrent clients (authenticate, startChat, "
                     "one reply)")
        lines.append(f"  failures {outcome.failures}, turn p50 {outcome.p50 * 1e3:.0f} ms, "
                     f"p99 {outcome.p99 * 1e3:.0f} ms, "
                     f"{outcome.bytes_per_idle_connection / 1024:.1f} KiB per idle connection "
                     f"({outcome.untrimmed_bytes_per_idle_connection / 1024:.1f} KiB "
                     "without malloc_trim)")
        for error in outcome.errors:
            lines.append(f"    e.g. {error}")
        ratios["capacity_failures"] = outcome.failures
        ratios["capacity_kib_per_idle"] = outcome.bytes_per_idle_connection / 1024

    _took(lines, "capacity", parts, started)
    lines.append("targets" + (" (quick mode: sizes too small to mean anything)" if quick else ""))
    for key, value in ratios.items():
        what, target, direction = TARGETS[key]
        met = value >= target if direction == ">=" else value <= target
        lines.append(f"  {what:<44} {value:8.2f}  target {direction} {target:<5g} "
                     f"{'met' if met else 'MISSED'}")
        records.append({"kind": "target", "name": key, "value": value, "target": target,
                        "direction": direction, "met": met})

    print("\n".join(lines))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    with args.output.open("w") as f:
        for record in records:
            f.write(json.dumps({**meta, **record}) + "\n")
    print(f"results: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
