#!/usr/bin/env python3
"""Validates JSON lines (events, change sets) against a JSON Schema in API/ with a real validator.

Usage: check-events.py SCHEMA EVENTS.jsonl
Every line must validate (formats checked: date-time); prints one line per failure with the line
number, the failing path and the reason, and exits 1 if any failed or if the file holds no event.
"""
import json
import sys

import jsonschema


def main() -> int:
    schema_path, events_path = sys.argv[1], sys.argv[2]
    with open(schema_path, encoding="utf-8") as f:
        schema = json.load(f)
    validator_class = jsonschema.validators.validator_for(schema)
    validator_class.check_schema(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    checked = failed = 0
    reasons = set()
    with open(events_path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            checked += 1
            try:
                event = json.loads(line)
            except json.JSONDecodeError as e:
                failed += 1
                print(f"{events_path}:{number}: not JSON: {e}")
                continue
            reasons.add(event.get("reason"))
            for error in validator.iter_errors(event):
                failed += 1
                path = "/".join(str(p) for p in error.absolute_path) or "(event)"
                print(f"{events_path}:{number}: {path}: {error.message}")
    if checked == 0:
        print(f"{events_path}: no events to check")
        return 1
    title = schema.get("title", schema_path)
    print(f"{title}: {checked} checked, {len(reasons - {None})} distinct reasons, {failed} failures")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
