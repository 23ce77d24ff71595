"""Validates Prometheus text exposition read from stdin with prometheus_client's parser.

Exits 0 when valid. Fails on a parse error, on a family whose samples are not contiguous after its
HELP/TYPE lines (the parser then splits it into several families, some untyped), and on an untyped family.
"""
import sys

from prometheus_client.parser import text_string_to_metric_families

text = sys.stdin.read()
seen = set()
problems = []
try:
    families = list(text_string_to_metric_families(text))
except Exception as e:  # any parse error is a failure
    print(f"parse error: {e}")
    sys.exit(1)
for family in families:
    if family.name in seen:
        problems.append(f"family {family.name} appears twice (its samples are not contiguous)")
    seen.add(family.name)
    if family.type == "unknown":
        problems.append(f"family {family.name} has no TYPE line before its samples")
if problems:
    print("\n".join(problems))
    sys.exit(1)
print(f"{len(families)} families, {sum(len(f.samples) for f in families)} samples")
