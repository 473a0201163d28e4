"""Turn a CRD's openAPIV3Schema into the JSON schema tests/helm/test_chart_validate.py checks
rendered objects against (run by hand when the CRD is updated; not a test):

    python -m tests.helm.crd_schemas.from_crd CRD.yaml analysistemplate.json "SOURCE"

What the API server does with strict field validation, in JSON-schema terms: an object schema
with `properties` rejects other fields (unless x-kubernetes-preserve-unknown-fields);
x-kubernetes-int-or-string is an integer or a string. Descriptions are dropped (size).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import yaml


def convert(node: Any) -> Any:
    if isinstance(node, list):
        return [convert(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: convert(v) for k, v in node.items() if k != "description" and not k.startswith("x-kubernetes-")}
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields"):
        out.setdefault("additionalProperties", False)
    return out


def main(crd_file: str, out_file: str, source: str) -> None:
    crd = yaml.safe_load(Path(crd_file).read_text())
    version = next(v for v in crd["spec"]["versions"] if v.get("storage"))
    schema = convert(version["schema"]["openAPIV3Schema"])
    kind, group = crd["spec"]["names"]["kind"], crd["spec"]["group"]
    schema["properties"]["apiVersion"] = {"const": f"{group}/{version['name']}"}
    schema["properties"]["kind"] = {"const": kind}
    schema["required"] = sorted({*schema.get("required", []), "apiVersion", "kind", "metadata", "spec"})
    document = {
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": f"{kind} {group}/{version['name']}: {source}",
        **schema,
    }
    Path(out_file).write_text(json.dumps(document, separators=(",", ":")) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:4])
