"""Benchmark the FOMM engine: full vox-256 model, random weights (or --checkpoint/--config).

    python benchmarks/bench_fomm.py [--threads 2] [--repeats 10] [--warmup 3] [--no-onnx]
                                    [--in-process] [--no-malloc-tuning]

Reports medians (ms per frame) of the official-style uncached generator forward (by default in a
separate process with glibc's default malloc settings, as the official code runs), the same forward
in-process, the cached fast exact path (Winograd; and with direct convolutions) and the ONNX Runtime
path, measured interleaved in the same rounds, with their ratios and the load average.
"""
import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.fomm.bench import run_bench  # noqa: E402


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint")
    ap.add_argument("--config")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=3)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--no-onnx", action="store_true")
    ap.add_argument("--in-process", action="store_true",
                    help="time the official-style forward in this process (not in its own)")
    ap.add_argument("--no-malloc-tuning", action="store_true")
    args = ap.parse_args(argv)
    result = run_bench(checkpoint=args.checkpoint, config=args.config,
                       random_weights=args.checkpoint is None, threads=args.threads, size=args.size,
                       repeats=args.repeats, warmup=args.warmup, onnx=not args.no_onnx, device=args.device,
                       official_process=not args.in_process, tune_malloc=not args.no_malloc_tuning)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
