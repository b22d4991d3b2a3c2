"""Before against after: the generated modules of two versions of symprop, timed in alternating processes.

    .venv/bin/python benchmarks/ab.py HEAD~3                 # that revision against the working tree
    .venv/bin/python benchmarks/ab.py v1 v2 --rounds 5 --workloads mlp,transformer --json /tmp/ab.json

Each version derives every workload's modules with its own symprop (in a process of its own, the version's source
first on the path; the workloads are this tree's, from run.py). Then, for every case and variant (the NumPy and
torch modules' loss_and_gradients), one process per (version, variant, case) times it as run.py times a variant,
before and after in turn, --rounds times; the medians of all calls are compared. Peak memory is one call's, as
run.py measures it. A difference under the spread of one version's round medians is noise.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import run  # noqa: E402  (the workloads, their cases and the worker)


def source(revision: str | None, folder: Path) -> Path:
    """A version's source tree: the working tree (None), or `revision` exported by git into `folder`."""
    if revision is None:
        return ROOT
    folder.mkdir(parents=True, exist_ok=True)
    archive = folder / "source.tar"
    subprocess.run(["git", "archive", "--format=tar", "-o", str(archive), revision], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "tree", filter="data")
    return folder / "tree"


def write_modules(tree: Path, folder: Path, workloads) -> None:
    """The modules of `workloads`, derived by the symprop of `tree`."""
    folder.mkdir(parents=True)
    code = (f"import sys; sys.path.insert(0, {str(HERE)!r}); from pathlib import Path; import run; "
            f"run.write_modules(Path({str(folder)!r}), {sorted(workloads)!r})")
    subprocess.run([sys.executable, "-c", code], check=True, env={**os.environ, "PYTHONPATH": str(tree)})


def time_one(variant: str, case: dict, modules: Path, timing: dict) -> dict:
    spec = {"kind": "variant", "variant": variant, "cases": [case], "modules": str(modules), "outputs": "",
            **timing}
    result = run.run_job(spec, 600, run.thread_env(None))
    if "error" in result or "error" in result["results"][0]:
        raise RuntimeError(result.get("error") or result["results"][0]["error"])
    return result["results"][0]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("before", help="a git revision")
    parser.add_argument("after", nargs="?", default=None, help="a git revision (default: the working tree)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workloads", default=",".join(run.NETWORKS))
    parser.add_argument("--variants", default="numpy,torch")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    workloads = args.workloads.split(",")
    cases = [{"workload": w, "dtype": d, "size": s} for w, d, s in run.FULL_CASES if w in workloads]
    timing = {"warmup": 3, "warmup_compiled": 6, "repeats": 10, "min_time": 1.0, "max_repeats": 1000}
    versions = {"before": args.before, "after": args.after}
    with tempfile.TemporaryDirectory(prefix="symprop-ab-") as tmp:
        modules = {}
        for label, revision in versions.items():
            tree = source(revision, Path(tmp, label))
            modules[label] = Path(tmp, label, "modules")
            write_modules(tree, modules[label], {c["workload"] for c in cases})
        pooled: dict = {}
        for round_ in range(args.rounds):
            for case in cases:
                for variant in args.variants.split(","):
                    order = ("before", "after") if round_ % 2 == 0 else ("after", "before")
                    for label in order:
                        result = time_one(variant, case, modules[label], timing)
                        entry = pooled.setdefault((run.case_id(case), variant, label), {"times": [], "rounds": []})
                        entry["times"] += result["times"]
                        entry["rounds"].append(statistics.median(result["times"]))
                        entry["peak"] = result["peak_bytes"]
                        print(f"round {round_ + 1}: {label} {variant} on {run.case_id(case)}", file=sys.stderr)
    rows = []
    print(f"{'case':<24} {'variant':<7} {'before ms':>10} {'after ms':>10} {'after/before':>12} {'spread':>7} "
          f"{'peak MiB before':>15} {'after':>8}")
    for case in cases:
        for variant in args.variants.split(","):
            before, after = (pooled[(run.case_id(case), variant, label)] for label in ("before", "after"))
            b, a = statistics.median(before["times"]), statistics.median(after["times"])
            spread = (max(before["rounds"]) - min(before["rounds"])) / b
            row = {"case": run.case_id(case), "variant": variant, "before_ms": b * 1e3, "after_ms": a * 1e3,
                   "ratio": a / b, "spread": spread, "peak_before": before["peak"], "peak_after": after["peak"]}
            rows.append(row)
            print(f"{row['case']:<24} {variant:<7} {b * 1e3:>10.4f} {a * 1e3:>10.4f} {a / b:>12.2f} {spread:>7.2f} "
                  f"{before['peak'] / 2**20:>15.3f} {after['peak'] / 2**20:>8.3f}")
    print("\nafter/before: the ratio of the medians of all timed calls; spread: (largest - smallest round median) / "
          "median, before's own (its noise)")
    if args.json:
        args.json.write_text(json.dumps({"before": args.before, "after": args.after or "working tree",
                                         "rounds": args.rounds, "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
