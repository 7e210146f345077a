"""Reads rotcheck's reports back the way CI tools do.

    check_reports.py REPORT.json SCHEMA.json REPORT.xml

Validates the JSON report against the documented schema (jsonschema), reads the JUnit XML with
junitparser, and prints one line of JSON with what junitparser counted, for the Rust test to
compare with the JSON report. Exits 1 with the reason on a schema violation.
"""

import json
import sys

import jsonschema
from junitparser import Failure, JUnitXml, Skipped

report_path, schema_path, junit_path = sys.argv[1:4]
with open(report_path) as f:
    report = json.load(f)
with open(schema_path) as f:
    schema = json.load(f)
try:
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(report, schema, cls=jsonschema.Draft202012Validator)
except jsonschema.ValidationError as e:
    print(f"schema violation: {e.message} at {list(e.absolute_path)}")
    sys.exit(1)

xml = JUnitXml.fromfile(junit_path)
tests = failures = skipped = 0
failed_names = []
for suite in xml:
    for case in suite:
        tests += 1
        for r in case.result:
            if isinstance(r, Failure):
                failures += 1
                failed_names.append(case.name)
            elif isinstance(r, Skipped):
                skipped += 1
print(json.dumps({"tests": tests, "failures": failures, "skipped": skipped, "failed": failed_names}))
