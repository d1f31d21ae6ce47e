"""Root-cause analysis on a generated dataset with planted causes.

Generates 20,000 realistic packets in which variant B fails more on long
prompts, one retrieval source returns nothing and one tool times out; then
asks aitel which attributes are over-represented among failures.
Run: python cookbook/root_cause_walkthrough.py   (needs aitel[analysis])
"""

import os
import tempfile
from pathlib import Path

from aitel.analysis import analyze, load
from aitel.analysis.synthetic import write_dataset

out = Path(os.environ.get("AITEL_DIR") or tempfile.mkdtemp()) / "generated"
files = write_dataset(out, 20_000, seed=3)
print(f"generated {sum(1 for _ in files)} file(s) of packets in {out}")

with load([str(out)]) as dataset:
    report = analyze(dataset)

totals = report.overview.totals
print(f"requests: {totals.requests}, failure rate: {totals.failure_rate:.1%}")
print("\nmost likely causes (failure rate vs elsewhere, lift, adjusted p):")
for finding in report.ranking.findings[:5]:
    print(
        f"  {finding.rank}. {finding.label:<45} {finding.failure_rate:6.1%} vs "
        f"{finding.failure_rate_elsewhere:5.1%}  lift {finding.lift:5.1f}  q={finding.q_value:.1e}"
    )
print("\ntop error groups:")
for group in report.failures.groups[:3]:
    print(f"  {group.count:>5}  {group.pattern[:70]}")
print(f"\nfull report: aitel report {out} -o report.html")
