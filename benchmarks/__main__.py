"""All benchmarks in one command; prints them and writes them into benchmarks/RESULTS.md.

    python -m benchmarks                    # speed (8000 features, with kornia), memory, int8 vs fp32
    python -m benchmarks --quick            # 2048 features, one repetition, no kornia, no memory table
    python -m benchmarks --skip memory --skip speed --no-write

The tables replace the section between the ``<!-- python -m benchmarks: begin/end -->`` markers of
RESULTS.md (appended the first time), headed by the machine (CPU, cores, torch, onnxruntime).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "RESULTS.md"
BEGIN, END = "<!-- python -m benchmarks: begin -->", "<!-- python -m benchmarks: end -->"
PARTS = ("speed", "memory", "precision")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine() -> str:
    import torch

    try:
        import onnxruntime
        ort = onnxruntime.__version__
    except ImportError:
        ort = "not installed"
    return (f"{cpu_model()}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), "
            f"onnxruntime {ort}, Python {platform.python_version()}, {time.strftime('%Y-%m-%d', time.gmtime())}")


def memory_part() -> str:
    try:
        from benchmarks.memory import memory_table
    except ImportError:
        return "benchmarks/memory.py is missing (memory_table not wired yet)"
    return memory_table()


def replace_section(text: str, section: str) -> str:
    """``text`` with the marked section replaced by ``section`` (appended when there is none)."""
    block = f"{BEGIN}\n{section.rstrip()}\n{END}"
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        return head + block + rest.split(END, 1)[1]
    return text.rstrip() + "\n\n" + block + "\n"


def main(argv: list[str] | None = None) -> None:
    from benchmarks.precision import DEFAULT_PAIR, precision_table
    from benchmarks.speed import speed_table

    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true",
                        help="2048 features, one repetition, no kornia, no memory table, no run-time quantising")
    parser.add_argument("--skip", action="append", choices=PARTS, default=[], help="leave a part out (repeatable)")
    parser.add_argument("--nfeatures", type=int, default=None, help="default 8000 (--quick: 2048)")
    parser.add_argument("--repeat", type=int, default=None, help="default 3 (--quick: 1)")
    parser.add_argument("--image1", default=DEFAULT_PAIR[0])
    parser.add_argument("--image2", default=DEFAULT_PAIR[1])
    parser.add_argument("--weights-dir", default=str(HERE.parents[1] / "shared" / "weights"),
                        help="folder with AffNet.pth and OriNet.pth (for the speed table)")
    parser.add_argument("--no-write", action="store_true", help="print only, leave RESULTS.md alone")
    args = parser.parse_args(argv)
    nfeatures = args.nfeatures or (2048 if args.quick else 8000)
    repeat = args.repeat or (1 if args.quick else 3)
    skip = set(args.skip) | ({"memory"} if args.quick else set())

    command = "python -m benchmarks " + " ".join(sys.argv[1:] if argv is None else argv)
    sections = [f"### Benchmarks (`{command.strip()}`)", "", f"Machine: {machine()}", ""]

    def add(title: str, body: str) -> None:
        print(f"\n== {title} ==\n{body}", flush=True)
        sections.extend([f"#### {title}", "", "```", body.rstrip(), "```", ""])

    print(sections[2], flush=True)
    if "speed" not in skip:
        speed_args = ["--image", args.image1, "--image2", args.image2, "--weights-dir", args.weights_dir,
                      "--nfeatures", str(nfeatures), "--repeat", str(repeat)]
        add("Speed: one image and one pair", speed_table(speed_args + (["--no-kornia"] if args.quick else [])))
    if "memory" not in skip:
        add("Memory", memory_part())
    if "precision" not in skip:
        add("int8 and bf16 vs fp32 HardNet (CPU)", precision_table(args.image1, args.image2, nfeatures, repeat,
                                                                  quantize_cost=not args.quick))
    if not args.no_write:
        RESULTS.write_text(replace_section(RESULTS.read_text(), "\n".join(sections)))
        print(f"\nwritten into {RESULTS}")


if __name__ == "__main__":
    main()
