"""How symprop's derivation time and derived-expression size grow with network depth.

For MLPs of depth D (D Linear layers: D-1 Linear(16,16)+Tanh blocks, then Linear(16,3) and
CrossEntropyLoss over class indices, 16 inputs; 64 hidden blocks would be 129 layers, over symprop's cap
of 128) it measures:

- derive: wall time of `derive_network(model)` (derive + simplify + schedule),
- render: wall time of `d.render("numpy")`,
- size: statements in the loss_and_gradients program, total sympy.count_ops over
  their exprs and operands, and lines of the rendered NumPy module.

Every measurement runs in a fresh Python process (this script with --worker D), so
SymPy's cache and imports do not carry over; import time is excluded. Depths are
alternated round-robin over the rounds; the table gives median and min per depth,
and each depth's ratio to the smallest depth, next to the depth ratio, so that
"about linear" is visible.

Run:  python benchmarks/derive_scaling.py [--rounds 5] [--depths 4,16,64] [--json PATH]
      python benchmarks/derive_scaling.py --quick   # 1 round, depths 2,4: only checks it runs
"""

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_JSON = Path(__file__).resolve().parent / "results" / "derive_scaling.json"


def worker(depth: int) -> dict:
    """One measurement in this (fresh) process; printed as JSON on stdout."""
    import sympy

    import symprop as S

    layers = []
    for _ in range(depth - 1):
        layers += [S.Linear(16, 16), S.Tanh()]
    model = S.Model(S.Sequential(*layers, S.Linear(16, 3)), S.CrossEntropyLoss(), inputs=16, name="mlp")

    t0 = time.perf_counter()
    d = S.derive_network(model)
    t1 = time.perf_counter()
    source = d.render("numpy")
    t2 = time.perf_counter()

    statements = d.programs["loss_and_gradients"].statements
    exprs = [e for s in statements for e in ((s.expr,) if s.expr is not None else ()) + tuple(s.operands)]
    return {"depth": depth, "derive_s": t1 - t0, "render_s": t2 - t1, "statements": len(statements),
            "count_ops": sum(int(sympy.count_ops(e)) for e in exprs), "lines": len(source.splitlines())}


def run_worker(depth: int) -> dict:
    out = subprocess.run([sys.executable, __file__, "--worker", str(depth)],
                         check=True, stdout=subprocess.PIPE, text=True).stdout  # stderr shows through
    return json.loads(out.strip().splitlines()[-1])


def summarize(runs: list[dict], depths: list[int]) -> list[dict]:
    rows = []
    for depth in depths:
        mine = [r for r in runs if r["depth"] == depth]
        derive = [r["derive_s"] for r in mine]
        render = [r["render_s"] for r in mine]
        rows.append({"depth": depth, "runs": len(mine),
                     "derive_median_s": statistics.median(derive), "derive_min_s": min(derive),
                     "render_median_s": statistics.median(render), "render_min_s": min(render),
                     # the size is deterministic: same in every run
                     "statements": mine[0]["statements"], "count_ops": mine[0]["count_ops"],
                     "lines": mine[0]["lines"]})
    base = rows[0]
    for row in rows:
        row["ratio"] = {"depth": row["depth"] / base["depth"],
                        "derive": row["derive_median_s"] / base["derive_median_s"],
                        "render": row["render_median_s"] / base["render_median_s"],
                        "statements": row["statements"] / base["statements"],
                        "count_ops": row["count_ops"] / base["count_ops"],
                        "lines": row["lines"] / base["lines"]}
    return rows


def print_table(rows: list[dict]) -> None:
    base = rows[0]["depth"]
    print(f"{'depth':>5} {'derive med s':>12} {'derive min s':>12} {'render s':>9} "
          f"{'statements':>10} {'count_ops':>9} {'lines':>6}")
    for r in rows:
        print(f"{r['depth']:>5} {r['derive_median_s']:>12.3f} {r['derive_min_s']:>12.3f} "
              f"{r['render_median_s']:>9.3f} {r['statements']:>10} {r['count_ops']:>9} {r['lines']:>6}")
    print(f"\nratios to depth {base} (median times):")
    print(f"{'depth':>5} {'depth x':>8} {'derive x':>9} {'render x':>9} "
          f"{'statements x':>12} {'count_ops x':>11} {'lines x':>8}")
    for r in rows:
        q = r["ratio"]
        print(f"{r['depth']:>5} {q['depth']:>8.2f} {q['derive']:>9.2f} {q['render']:>9.2f} "
              f"{q['statements']:>12.2f} {q['count_ops']:>11.2f} {q['lines']:>8.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5, help="repeats per depth (default 5)")
    parser.add_argument("--depths", default="4,16,64", help="comma-separated depths (default 4,16,64)")
    parser.add_argument("--quick", action="store_true", help="1 round, depths 2,4: only checks it runs")
    parser.add_argument("--json", type=Path, default=None,
                        help=f"results file (default {DEFAULT_JSON}; --quick writes none unless given)")
    parser.add_argument("--worker", type=int, metavar="DEPTH", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.worker is not None:
        print(json.dumps(worker(args.worker)))
        return
    rounds, depths = (1, [2, 4]) if args.quick else (args.rounds, [int(d) for d in args.depths.split(",")])
    if rounds < 1 or not depths or min(depths) < 1:
        parser.error("--rounds and every depth must be at least 1")

    runs = []
    for i in range(rounds):
        for depth in depths:  # round-robin, so drift affects every depth alike
            print(f"round {i + 1}/{rounds}, depth {depth} ...", file=sys.stderr, flush=True)
            runs.append(run_worker(depth))
    rows = summarize(runs, depths)
    print_table(rows)

    if args.json is None and args.quick:
        return
    args.json = args.json or DEFAULT_JSON
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"rounds": rounds, "depths": depths, "python": sys.version.split()[0],
                                     "summary": rows, "runs": runs}, indent=2) + "\n")
    print(f"\nwrote {args.json}")


if __name__ == "__main__":
    main()
