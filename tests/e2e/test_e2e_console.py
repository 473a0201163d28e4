"""The review console end to end: a video moderated by the real gateway and model services
lands in the REVIEW queue; a reviewer in real headless Chromium logs in, opens it, sees the
AUDIO / VISUAL / TEXT evidence marks at their times, reveals the evidence frame's thumbnail and
blocks it for violence; the label and the audit trail are in the store; a second reviewer
cannot claim it. Screenshots go to $MODGATE_TEST_ARTIFACTS/console-e2e (or a temp folder).

The policy is the default one with every BLOCK threshold at 1.0 ("review-first": a new market
where every flag goes to a human), so the threat is REVIEW, not BLOCK; the services of this
module load it (the session's services hold the default policy)."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
import yaml

from modgate.client import Options
from modgate.policy import DEFAULT_POLICY_DIR
from modgate.store import StoreSettings, VerdictStore
from modgate.store.labels import labelled_verdicts
from modgate.store.schema import audit
from modgate.tools.mediagen import Generated, MediaSpec, Speech, TextOverlay
from modgate.tools.stack import free_port, service_spec
from modgate.v1 import moderation_pb2 as pb
from tests.console_browser import (
    artifacts_dir,
    browser_missing,
    chromium,
    decide,
    login,
    open_first_item,
    reveal_thumbnail,
    screenshot,
    thumbnail_filter,
    timeline_marks,
)
from tests.console_process import ConsoleProcess, write_tokens
from tests.e2e.conftest import QUIET_ENV, Gateway, Services

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.timeout(900),
    pytest.mark.skipif(browser_missing() is not None, reason=str(browser_missing())),
]

THREAT = "I found out where you live, and you are going to get hurt."
ON_SCREEN = "Earn money fast from home, no experience"


@pytest.fixture(scope="module")
def review_first(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("review-first-policy")
    policy = yaml.safe_load((DEFAULT_POLICY_DIR / "default.yaml").read_text(encoding="utf-8"))
    policy["version"] = f"{policy['version']}-review-first"
    for category in policy["categories"].values():
        category["thresholds"]["block"] = 1.0
    (directory / "default.yaml").write_text(yaml.safe_dump(policy, sort_keys=False), encoding="utf-8")
    return directory


@pytest.fixture(scope="module")
def review_gateway(
    services: Services,
    start_gateway: Callable[..., Gateway],
    review_first: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[Gateway, str]]:
    """A gateway, text and vision services on the review-first policy (speech is policy-free:
    the session's); its own SQLite store."""
    env = {**QUIET_ENV, "MODGATE_POLICY_DIR": str(review_first), "MODGATE_VISION_ALLOW_UNCALIBRATED": "true"}
    urls, started = dict(services.urls), []
    for service in ("text", "vision"):
        port = free_port()
        spec = service_spec(service, port, python=sys.executable, env=env, name=f"{service}-review-first")
        started.append(services.processes.start(spec))
        urls[service] = f"http://127.0.0.1:{port}"
    services.processes.wait_ready(*started)
    upstreams = "".join(f'{s}:\n  stable: {{url: "{urls[s]}"}}\n' for s in ("speech", "vision", "text"))
    store_url = f"sqlite:///{tmp_path_factory.mktemp('console-store') / 'verdicts.db'}"
    gateway = start_gateway(
        "gateway-review-first", upstreams, MODGATE_POLICY_DIR=str(review_first), MODGATE_STORE_URL=store_url
    )
    yield gateway, store_url
    for service in ("text", "vision"):
        services.processes.stop(f"{service}-review-first")


def test_a_reviewer_blocks_a_moderated_video_from_the_queue_in_chromium(
    review_gateway: tuple[Gateway, str], make_media: Callable[[MediaSpec], Generated], tmp_path: Path
) -> None:
    gateway, store_url = review_gateway
    media = make_media(
        MediaSpec(
            width=640, height=360, fps=5, duration_s=9.0, audio="speech",
            speech=(Speech(4.5, THREAT),), overlays=(TextOverlay(1.0, 3.0, ON_SCREEN, size_px=36),),
        )
    )  # fmt: skip
    with gateway.client(timeout_s=300) as client:
        verdict = client.moderate_file(
            media.path, title="My new cooking channel", options=Options(include_transcript=True)
        )
    assert verdict.decision == pb.DECISION_REVIEW, (
        list(verdict.reasons),
        [(c.category, c.score) for c in verdict.categories],
    )
    audio = [e for e in verdict.evidence if e.modality == pb.MODALITY_AUDIO]
    visual = [e for e in verdict.evidence if e.modality == pb.MODALITY_VISUAL]
    assert audio and visual, list(verdict.evidence)

    # The gateway kept a thumbnail of the evidence frame, and only of evidence frames.
    store = VerdictStore.open(StoreSettings(url=store_url))
    try:
        thumbs = store.thumbnails(verdict.verdict_id)
    finally:
        store.close()
    assert thumbs and len(thumbs) <= len(visual)
    assert all(abs(t.time_ms - visual[0].start_ms) <= 1500 for t in thumbs[:1]), (
        thumbs[0].time_ms,
        visual[0].start_ms,
    )

    tokens = write_tokens(tmp_path / "tokens.yaml", {"rita": "reviewer", "sam": "reviewer"})
    artifacts = artifacts_dir("console-e2e")
    console_process = ConsoleProcess(store_url, tmp_path / "tokens.yaml", log_path=tmp_path / "console.log")
    with console_process as console, chromium(artifacts) as driver:
        login(driver, console.url, tokens["rita"])
        screenshot(driver, artifacts, "queue")
        assert open_first_item(driver) == verdict.verdict_id
        marks = timeline_marks(driver)
        assert {"AUDIO", "VISUAL"} <= {m["modality"] for m in marks}, marks
        # The threat's mark sits where the gateway heard it (spoken from 4.5 s), on a timeline
        # as long as the media; the on-screen text's where it was shown (1 s to 3 s).
        [spoken] = [m for m in marks if m["modality"] == "AUDIO" and m["start_ms"] == audio[0].start_ms][:1]
        assert abs(spoken["start_ms"] - 4500) <= 1500 and spoken["shown"]
        assert spoken["percent"] == pytest.approx(100 * audio[0].start_ms / verdict.media.duration_ms, abs=1)
        assert any(abs(m["start_ms"] - 1000) <= 1500 for m in marks if m["modality"] == "VISUAL"), marks
        frame = thumbs[0].frame_index
        assert "blur" in thumbnail_filter(driver, frame)
        reveal_thumbnail(driver, frame)
        assert "blur" not in thumbnail_filter(driver, frame)
        screenshot(driver, artifacts, "item")
        # A second reviewer, meanwhile, cannot take the item rita holds.
        claim = httpx.post(
            f"{console.url}/api/v1/items/{verdict.verdict_id}/claim",
            headers={"authorization": f"Bearer {tokens['sam']}"},
            timeout=10,
        )
        assert claim.status_code == 409, claim.text
        decide(driver, "BLOCK", category="violence", note="threat in the audio at 0:04")
        screenshot(driver, artifacts, "decided")

    store = VerdictStore.open(StoreSettings(url=store_url))
    try:
        [labelled] = list(labelled_verdicts(store))
        with store.connect() as connection:
            actions = [
                (r.actor, r.action, r.verdict_id)
                for r in connection.execute(audit.select().order_by(audit.c.at))
            ]
    finally:
        store.close()
    assert (labelled.label.verdict_id, labelled.label.reviewer) == (verdict.verdict_id, "rita")
    assert (labelled.label.decision, labelled.label.category) == ("BLOCK", "violence")
    assert ("rita", "decide", verdict.verdict_id) in actions
    assert ("rita", "claim", verdict.verdict_id) in actions
    assert (artifacts / "item.png").stat().st_size > 10_000
