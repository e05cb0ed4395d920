#!/usr/bin/env python3
"""Parses a Prometheus text exposition (read from stdin) with Prometheus'
own Python client parser, and prints what it read as JSON: one object per
family, {"name", "type", "help", "samples": [{"name", "labels", "value"}]}.

Exits 1 with the parser's complaint when the text is not valid exposition,
or when a family is declared twice or a sample comes outside its family
(which the parser tolerates and a Prometheus server does not). Run by
tests/ops_cli.rs on a trader's GET /metrics.
"""

import json
import math
import sys

try:
    from prometheus_client.parser import text_string_to_metric_families
except ImportError:
    print("FAILED: the python module prometheus_client is missing (pip install prometheus_client)")
    sys.exit(1)


def main():
    text = sys.stdin.read()
    families = []
    seen = set()
    try:
        for family in text_string_to_metric_families(text):
            if family.name in seen:
                print(f"FAILED: family {family.name} declared twice")
                sys.exit(1)
            seen.add(family.name)
            samples = []
            for sample in family.samples:
                value = sample.value
                if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
                    value = str(value)
                samples.append({"name": sample.name, "labels": sample.labels, "value": value})
            families.append(
                {"name": family.name, "type": family.type, "help": family.documentation, "samples": samples}
            )
    except Exception as error:  # the parser raises ValueError and others
        print(f"FAILED: not valid exposition text: {error}")
        sys.exit(1)
    # Every `# TYPE` line names a family the parser returned (a sample
    # outside its family would start an untyped family of its own).
    for family in families:
        if family["type"] == "unknown":
            print(f"FAILED: samples of {family['name']} have no # TYPE")
            sys.exit(1)
    print(json.dumps(families))


if __name__ == "__main__":
    main()
