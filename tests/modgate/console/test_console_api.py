"""The JSON API (bearer tokens) and the labels export (admins), against the real process."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable

import httpx

from modgate.store import VerdictStore
from modgate.store.labels import labelled_verdicts
from tests.console_process import ConsoleProcess
from tests.modgate.console.client import Reviewer
from tests.modgate.console.records import Stored


def api(console: ConsoleProcess, token: str) -> httpx.Client:
    return httpx.Client(
        base_url=f"{console.url}/api/v1", headers={"authorization": f"Bearer {token}"}, trust_env=False
    )


def test_api_queue_item_claim_decide_and_labels(
    console: ConsoleProcess, tokens: dict[str, str], stored: Stored, store: VerdictStore
) -> None:
    with (
        api(console, tokens["alice"]) as alice,
        api(console, tokens["bob"]) as bob,
        api(console, tokens["root"]) as root,
    ):
        queue = alice.get("/queue").json()
        assert [i["verdict_id"] for i in queue["items"]] == stored.queue_order
        assert queue["items"][0]["categories"] == [{"category": "violence", "score": 0.800000011920929}]
        hate = alice.post("/queue", json={"category": "hate", "variant": "canary"}).json()
        assert [i["verdict_id"] for i in hate["items"]] == [stored.hate_canary]
        assert alice.post("/queue", json={"min_age_h": -1}).status_code == 422

        item = alice.get(f"/items/{stored.top_old}").json()
        assert item["decision"] == "REVIEW" and item["duration_ms"] == 10_000
        assert [(m["modality"], m["start_ms"], m["x"]) for m in item["marks"]] == [
            ("AUDIO", 2000, 200.0),
            ("VISUAL", 6000, 600.0),
            ("VISUAL", 8000, 800.0),
        ]
        assert item["transcript"][1]["marked"] == ["kill you"]
        assert [t["frame_index"] for t in item["thumbnails"]] == [3, 7]
        assert alice.get(f"/items/{stored.top_old}/frames/3").content[:2] == b"\xff\xd8"  # a JPEG
        assert alice.get(f"/items/{'0' * 32}").status_code == 404

        claimed = alice.post(f"/items/{stored.top_old}/claim")
        assert claimed.status_code == 200 and claimed.json()["lease"]["reviewer"] == "alice"
        refused = bob.post(f"/items/{stored.top_old}/claim")
        assert refused.status_code == 409 and refused.json()["lease"]["reviewer"] == "alice"
        assert bob.post(f"/items/{stored.top_old}/decide", json={"decision": "ALLOW"}).status_code == 409
        assert alice.post(f"/items/{stored.blocked}/claim").status_code == 409  # not REVIEW

        decided = alice.post(f"/items/{stored.top_old}/decide", json={"decision": "ALLOW", "note": "satire"})
        assert decided.status_code == 200 and decided.json()["label"]["decision"] == "ALLOW"
        assert stored.top_old not in [i["verdict_id"] for i in alice.get("/queue").json()["items"]]

        assert alice.get("/labels").status_code == 403
        lines = [json.loads(line) for line in root.get("/labels").text.splitlines()]
        assert [(r["verdict_id"], r["reviewer"], r["decision"], r["note"]) for r in lines] == [
            (stored.top_old, "alice", "ALLOW", "satire")
        ]
    assert [lv.label.decision for lv in labelled_verdicts(store)] == ["ALLOW"]


def test_admin_exports_labels_as_jsonl_and_csv(
    client: Callable[[], Reviewer], tokens: dict[str, str], stored: Stored
) -> None:
    alice, root = client(), client()
    alice.login(tokens["alice"])
    root.login(tokens["root"])
    for item, decision, category, note in (
        (stored.top_old, "BLOCK", "violence", "=HYPERLINK(1)"),
        (stored.hate_canary, "ALLOW", "", "fine"),
    ):
        assert alice.post(f"/items/{item}/claim").status_code == 303
        fields = {"decision": decision, "category": category, "note": note}
        assert alice.post(f"/items/{item}/decide", fields).status_code == 303

    jsonl = root.get("/admin/export/labels.jsonl")
    assert jsonl.status_code == 200 and jsonl.headers["content-type"].startswith("application/x-ndjson")
    rows = [json.loads(line) for line in jsonl.text.splitlines()]
    assert [(r["verdict_id"], r["decision"], r["category"]) for r in rows] == [
        (stored.top_old, "BLOCK", "violence"),
        (stored.hate_canary, "ALLOW", ""),
    ]
    assert rows[0]["policy_name"] == "default" and rows[0]["verdict_decision"] == "REVIEW"

    exported = root.get("/admin/export/labels.csv")
    assert exported.headers["content-type"].startswith("text/csv")
    table = list(csv.DictReader(io.StringIO(exported.text)))
    assert [(r["verdict_id"], r["reviewer"], r["decision"]) for r in table] == [
        (stored.top_old, "alice", "BLOCK"),
        (stored.hate_canary, "alice", "ALLOW"),
    ]
    assert table[0]["note"] == "'=HYPERLINK(1)"  # never a formula in a spreadsheet
    audit_page = root.get("/admin/audit").text
    assert audit_page.count('data-action="export"') == 2 and audit_page.count('data-action="decide"') == 2
