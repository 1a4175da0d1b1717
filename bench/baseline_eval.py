#!/usr/bin/env python3
"""Precision and recall of the baseline detector over several seeds, and the enrichment stage's speed.

For each seed, tests/inventory_scenario.py simulates the plant (polling with jitter, missed polls,
reconnects, a DNP3 master failover, day/night process values) for ``--learn-hours`` + ``--detect-hours``;
the first part teaches the baseline, the second — with one injected deviation of each kind — is
checked. A true positive is an injected (kind, subject) reported; anything else reported is a false
positive. Not a test: run it by hand (a few minutes with the defaults).

    .venv/bin/python bench/baseline_eval.py --seeds 5 --learn-hours 8 --detect-hours 4
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from inventory_scenario import generate
from otsentry.inventory import oui
from otsentry.inventory.baseline import Baseline
from otsentry.inventory.enrich import Enricher


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--first-seed", type=int, default=1)
    parser.add_argument("--learn-hours", type=float, default=8.0)
    parser.add_argument("--detect-hours", type=float, default=4.0)
    parser.add_argument(
        "--day-hours", type=float, default=None, help="day/night period (default: the learning time)"
    )
    args = parser.parse_args()
    oui.vendor_table()  # load the registry outside the timings
    print(
        f"{'seed':>4} {'learn ev':>9} {'detect ev':>9} {'injected':>8} {'TP':>3} {'FP':>3} {'FN':>3}"
        f" {'precision':>9} {'recall':>6} {'learn ev/s':>10} {'detect ev/s':>11}"
    )
    totals = [0, 0, 0]
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        scenario = generate(
            seed,
            learn_s=args.learn_hours * 3600,
            detect_s=args.detect_hours * 3600,
            day_s=args.day_hours * 3600 if args.day_hours else None,
        )
        learner = Enricher(seed=seed)
        started = time.process_time()
        learner(scenario.learn)
        learn_rate = len(scenario.learn) / (time.process_time() - started)
        detector = Enricher(baseline=Baseline.learn(learner.inventory))
        started = time.process_time()
        out = detector(scenario.detect)
        out += detector.finish()
        detect_rate = len(scenario.detect) / (time.process_time() - started)
        found = {
            (a["event.action"], a["otsentry.baseline.subject"]) for a in out if a.get("event.kind") == "alert"
        }
        tp, fp, fn = (
            len(found & scenario.expected),
            len(found - scenario.expected),
            len(scenario.expected - found),
        )
        totals = [totals[0] + tp, totals[1] + fp, totals[2] + fn]
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / (tp + fn) if tp + fn else 1.0
        sizes = f"{len(scenario.learn):>9} {len(scenario.detect):>9} {len(scenario.expected):>8}"
        print(
            f"{seed:>4} {sizes} {tp:>3} {fp:>3} {fn:>3} {precision:>9.3f} {recall:>6.3f}"
            f" {learn_rate:>10,.0f} {detect_rate:>11,.0f}"
        )
        for item in sorted(found - scenario.expected):
            print(f"     false positive: {item}")
        for item in sorted(scenario.expected - found):
            print(f"     missed: {item}")
    tp, fp, fn = totals
    precision = tp / (tp + fp) if tp + fp else 1.0
    recall = tp / (tp + fn) if tp + fn else 1.0
    print(
        f"all seeds: precision {precision:.3f}, recall {recall:.3f} ({tp} found, {fp} false, {fn} missed);"
        " rates are CPU time of the enrichment stage (observe, inventory update, field annotation, detection)"
    )


if __name__ == "__main__":
    main()
