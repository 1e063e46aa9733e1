#!/usr/bin/env python3
"""Validate run results and audit logs against Docs/schemas (JSON Schema 2020-12).

    validate-schemas.py [--min-results N] [--min-audit N] PATH...

Each PATH is a run result (`*.json`: one object), an audit log (`*.jsonl`: one
record per line) or a directory searched for both. An audit `run_end` record's
`result` is checked against the run-result schema too (the audit schema refers to
it). Exits 1 when any document is invalid, when fewer than N results or audit logs
were found (a collection that came back empty must not pass), or when a control
fails: every valid result must become invalid with an unknown field added at the
top and inside `fences`, or without `runId`; every valid audit record without
`prev`. The controls show the validator is really checking (a schema that lost
`additionalProperties: false` or `required` is caught).

Needs the `jsonschema` package (Debian: python3-jsonschema; .ci/run installs it).
"""
import argparse
import copy
import json
import os
import sys

import jsonschema

SCHEMAS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Docs", "schemas")


def load_schema(name):
    with open(os.path.join(SCHEMAS, name)) as f:
        schema = json.load(f)
    jsonschema.Draft202012Validator.check_schema(schema)
    return schema


def validators():
    result = load_schema("run-result.schema.json")
    audit = load_schema("audit-record.schema.json")
    try:
        # jsonschema >= 4.18: references resolve through a registry.
        from referencing import Registry, Resource
        registry = Registry().with_resources(
            [(s["$id"], Resource.from_contents(s)) for s in (result, audit)])
        return (jsonschema.Draft202012Validator(result, registry=registry),
                jsonschema.Draft202012Validator(audit, registry=registry))
    except ImportError:
        # Older (Debian 12's 4.10): a RefResolver with both schemas in its store.
        store = {s["$id"]: s for s in (result, audit)}
        return tuple(jsonschema.Draft202012Validator(s, resolver=jsonschema.RefResolver.from_schema(s, store=store))
                     for s in (result, audit))


def collect(paths):
    results, audits = [], []
    for p in paths:
        if os.path.isdir(p):
            for root, _, files in os.walk(p):
                for name in sorted(files):
                    full = os.path.join(root, name)
                    if name.endswith(".jsonl"):
                        audits.append(full)
                    elif name.endswith(".json"):
                        results.append(full)
        elif p.endswith(".jsonl"):
            audits.append(p)
        else:
            results.append(p)
    return sorted(results), sorted(audits)


def errors(validator, doc):
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(doc)]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--min-results", type=int, default=0)
    ap.add_argument("--min-audit", type=int, default=0)
    ap.add_argument("paths", nargs="+")
    args = ap.parse_args()

    result_v, audit_v = validators()
    results, audits = collect(args.paths)
    bad = []

    for path in results:
        try:
            with open(path) as f:
                doc = json.load(f)
        except (OSError, ValueError) as e:
            bad.append(f"{path}: not JSON: {e}")
            continue
        problems = errors(result_v, doc)
        bad += [f"{path}: {p}" for p in problems]
        if problems or not isinstance(doc, dict):
            continue
        # Controls: each of these must be refused.
        extra = dict(doc, undocumentedField=1)
        nested = copy.deepcopy(doc)
        nested["fences"]["undocumentedField"] = 1
        missing = {k: v for k, v in doc.items() if k != "runId"}
        for what, variant in (("an unknown top-level field", extra), ("an unknown field in fences", nested),
                              ("no runId", missing)):
            if result_v.is_valid(variant):
                bad.append(f"{path}: control failed: the result with {what} passed")

    records = 0
    for path in audits:
        with open(path) as f:
            lines = f.read().splitlines()
        for n, line in enumerate(lines, 1):
            try:
                rec = json.loads(line)
            except ValueError as e:
                bad.append(f"{path}:{n}: not JSON: {e}")
                continue
            records += 1
            problems = errors(audit_v, rec)
            bad += [f"{path}:{n}: {p}" for p in problems]
            if problems:
                continue
            without = {k: v for k, v in rec.items() if k != "prev"}
            if audit_v.is_valid(without):
                bad.append(f"{path}:{n}: control failed: the record without prev passed")
            if rec.get("type") == "run_end":
                res = copy.deepcopy(rec)
                res["result"]["undocumentedField"] = 1
                if audit_v.is_valid(res):
                    bad.append(f"{path}:{n}: control failed: a run_end whose result has an unknown field passed")

    for b in bad:
        print(b)
    print(f"validate-schemas: {len(results)} run results, {len(audits)} audit logs ({records} records), "
          f"{len(bad)} problems")
    if len(results) < args.min_results:
        print(f"validate-schemas: expected at least {args.min_results} run results, found {len(results)}")
        return 1
    if len(audits) < args.min_audit:
        print(f"validate-schemas: expected at least {args.min_audit} audit logs, found {len(audits)}")
        return 1
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
