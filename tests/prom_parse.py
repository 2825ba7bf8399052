"""Parses Prometheus text exposition from stdin with the Prometheus project's Python parser
(prometheus_client) and prints the samples as JSON: [{"name", "labels", "value"}].
A syntax error makes the parser raise, and this script exit non-zero."""
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

samples = []
for family in text_string_to_metric_families(sys.stdin.read()):
    for s in family.samples:
        samples.append({"name": s.name, "labels": s.labels, "value": s.value})
print(json.dumps(samples))
