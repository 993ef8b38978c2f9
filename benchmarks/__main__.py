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
    "e2e_vs_voxta_client": ("end to end: ours vs voxta-client", 3.0, ">="),
    "e2e_cpu_vs_voxta_client": ("end to end per client CPU-second: ours vs vc", 3.0, ">="),
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

    if "e2e" in parts:
        chunks = 300 if quick else 20_000
        result = e2e.run(chunks, 1 if quick else max(3, repeats // 2), vc_python)
        records.append({"kind": "e2e", **result})
        cpu = e2e.CPU
        lines.append(f"end to end: one reply of {chunks} chunks over loopback (chunks per "
                     "second; per CPU-second of the client's process)")
        lines.append(f"  {'ours: VoxtaClient':<42} {result['ours']:10.0f} /s "
                     f"{result['ours' + cpu]:10.0f} /cpu-s")
        if result["voxta-client"] is not None:
            lines.append(f"  {'voxta-client 0.2.0':<42} {result['voxta-client']:10.0f} /s "
                         f"{result['voxta-client' + cpu]:10.0f} /cpu-s")
            ratios["e2e_vs_voxta_client"] = result["ours"] / result["voxta-client"]
            ratios["e2e_cpu_vs_voxta_client"] = (result["ours" + cpu]
                                                 / result["voxta-client" + cpu])
        else:
            lines.append("  voxta-client: skipped (no virtualenv; nox -s bench builds one)")

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
