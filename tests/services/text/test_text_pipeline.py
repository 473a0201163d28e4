"""Items end to end in-process: limits, edge cases, spans, languages, policy reloads."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest
import yaml

from modgate.policy import DEFAULT_POLICY_DIR, PolicyError
from modgate.wire import TextItem, TextItemResult
from services.common import PolicyStore, UnknownPolicyError
from services.text.encoder import Encoder
from services.text.pipeline import PolicyBundle, TextModerator


def _run(
    moderator: TextModerator, bundle: PolicyBundle, encoder: Encoder, *texts: str
) -> list[TextItemResult]:
    items = [TextItem(id=f"i{n}", text=t, source="caption") for n, t in enumerate(texts)]
    return moderator.moderate(items, bundle, encoder.encode)


def test_empty_and_blank_text_score_zero(
    moderator: TextModerator, default_bundle: PolicyBundle, text_encoder: Encoder
) -> None:
    for result in _run(moderator, default_bundle, text_encoder, "", "   \n\t ", "\x00\x07\u200b"):
        assert set(result.scores) == set(default_bundle.policy.text_categories())
        assert all(v == 0.0 for v in result.scores.values())
        assert result.matches == []
        assert "empty text: nothing to score" in result.notes


def test_megabyte_text_is_truncated_with_a_note(default_bundle: PolicyBundle, text_encoder: Encoder) -> None:
    moderator = TextModerator(max_chars=2_000)
    text = "I will find you and hurt you. " * 35_000  # ~1 MB
    started = time.perf_counter()
    [result] = _run(moderator, default_bundle, text_encoder, text)
    assert time.perf_counter() - started < 30
    assert any("over the 2000-character limit" in n and str(len(text)) in n for n in result.notes)
    assert result.scores["violence"] >= 0.5
    assert all(m.span_end is None or m.span_end <= 2_000 for m in result.matches)


def test_control_characters_are_ignored_but_spans_index_the_original(
    moderator: TextModerator, default_bundle: PolicyBundle, text_encoder: Encoder
) -> None:
    text = "\x00\x01\x1b[31mFREE\u200b iPhone\x07 for you!"
    [result] = _run(moderator, default_bundle, text_encoder, text)
    assert any("control/invisible character(s) ignored" in n for n in result.notes)
    hits = [m for m in result.matches if m.signal == "blocklist"]
    assert hits, result.matches
    assert text[hits[0].span_start : hits[0].span_end] == "FREE\u200b iPhone"


def test_spans_point_into_the_original_text(
    moderator: TextModerator, default_bundle: PolicyBundle, text_encoder: Encoder
) -> None:
    text = "Great video 👍 but you are a f.u.c.k.i.n.g idiot, I know where you live"
    [result] = _run(moderator, default_bundle, text_encoder, text)
    lexicon = [m for m in result.matches if m.signal == "lexicon"]
    assert [text[m.span_start : m.span_end] for m in lexicon] == ["f.u.c.k.i.n.g"]
    semantic = [m for m in result.matches if m.signal == "semantic"]
    assert semantic and all(m.evidence.startswith("nearest exemplar: ") for m in semantic)
    assert all(text[m.span_start : m.span_end] == text for m in semantic)
    assert result.matches == sorted(result.matches, key=lambda m: -m.score)


def test_long_text_is_scored_by_windows(
    moderator: TextModerator, default_bundle: PolicyBundle, text_encoder: Encoder
) -> None:
    benign = "We walked along the river and talked about the garden and the new recipes. " * 12
    threat = "I know where you live and tonight I am coming to hurt you. "
    text = benign + threat + benign
    [result] = _run(moderator, default_bundle, text_encoder, text)
    assert any("windows" in n for n in result.notes)
    assert result.scores["violence"] >= 0.5
    [match] = [m for m in result.matches if m.category == "violence" and m.signal == "semantic"]
    assert "coming to hurt you" in text[match.span_start : match.span_end]
    assert len(text[match.span_start : match.span_end].split()) <= moderator.chunk_words


@pytest.mark.parametrize(
    ("text", "language"),
    [
        ("Ce film est vraiment génial et je le recommande à tous mes amis", "fr"),
        ("Das ist nicht gut, ich bin sehr müde und ich will schlafen", "de"),
        ("Я тебя найду и убью", "und-Cyrl"),
        ("お前を殺してやる", "ja"),
        ("أنا أحبك كثيرا", "und-Arab"),
        ("너를 찾아서 죽일 거야", "ko"),
        ("🔥🔥🔥", "und"),
    ],
)
def test_other_languages_never_crash(
    moderator: TextModerator, default_bundle: PolicyBundle, text_encoder: Encoder, text: str, language: str
) -> None:
    [result] = _run(moderator, default_bundle, text_encoder, text)
    assert result.language == language
    assert all(0.0 <= v <= 1.0 for v in result.scores.values())
    if language != "und":
        assert any("low-confidence" in n for n in result.notes), result.notes


def test_english_has_no_language_note(
    moderator: TextModerator, default_bundle: PolicyBundle, text_encoder: Encoder
) -> None:
    [result] = _run(moderator, default_bundle, text_encoder, "I am going to the shop with my sister.")
    assert result.language == "en" and result.notes == []


def test_ids_and_order_are_kept(
    moderator: TextModerator, default_bundle: PolicyBundle, text_encoder: Encoder
) -> None:
    results = _run(moderator, default_bundle, text_encoder, "hello", "", "kys", "good morning")
    assert [r.id for r in results] == ["i0", "i1", "i2", "i3"]


# --- policy store -----------------------------------------------------------------------


def _policy_dir(tmp_path: Path) -> Path:
    directory = tmp_path / "policies"
    directory.mkdir()
    shutil.copy(DEFAULT_POLICY_DIR / "default.yaml", directory / "default.yaml")
    return directory


def _write_version(path: Path, version: str, extra_term: str | None = None) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    data["version"] = version
    if extra_term is not None:
        data["categories"]["drugs"]["text"].setdefault("blocklist", {}).setdefault("terms", []).append(
            extra_term
        )
    path.write_text(yaml.safe_dump(data, sort_keys=False), encoding="utf-8")


def test_policy_store_reloads_on_change_and_keeps_last_good(
    tmp_path: Path, moderator: TextModerator, text_encoder: Encoder
) -> None:
    directory = _policy_dir(tmp_path)
    builds: list[str] = []

    def build(policy):  # type: ignore[no-untyped-def]
        builds.append(policy.version)
        return moderator.build_policy(policy, text_encoder.encode)

    store = PolicyStore(directory, build, reload_s=0.0)
    first = store.get("default")
    assert store.get("default") is first  # unchanged files: nothing rebuilt
    assert len(builds) == 1

    _write_version(directory / "default.yaml", "test-2", extra_term="zorbex")
    second = store.get("default")
    assert second.ref.version == "test-2" and second.ref.digest != first.ref.digest
    # The new blocklist term is live (l33t spelling included).
    [result] = moderator.moderate(
        [TextItem(id="a", text="buy z0rbex", source="title")], second, text_encoder.encode
    )
    assert result.scores["drugs"] == 1.0
    assert [m.evidence for m in result.matches if m.signal == "blocklist"] == [
        'blocklist term: zorbex (written "z0rbex")'
    ]

    (directory / "default.yaml").write_text("categories: [unclosed", encoding="utf-8")
    assert store.get("default") is second  # a broken edit keeps the last good version
    assert store.last_error is not None and "default.yaml" in store.last_error

    with pytest.raises(UnknownPolicyError, match=r"'strict' is not loaded \(loaded: default\)"):
        store.get("strict")


def test_policy_store_rereads_when_caller_holds_another_version(
    tmp_path: Path, moderator: TextModerator, text_encoder: Encoder
) -> None:
    directory = _policy_dir(tmp_path)
    store = PolicyStore(directory, lambda p: moderator.build_policy(p, text_encoder.encode), reload_s=3600)
    assert store.get("default").ref.version != "test-3"
    _write_version(directory / "default.yaml", "test-3")
    assert store.get("default").ref.version != "test-3"  # periodic check not due yet
    assert store.get("default", "test-3").ref.version == "test-3"  # the caller's version forces it


def test_policy_store_refuses_a_broken_directory_at_start(tmp_path: Path, text_encoder: Encoder) -> None:
    with pytest.raises(PolicyError, match=r"no \*\.yaml policy files"):
        PolicyStore(tmp_path, lambda p: None, reload_s=0)  # type: ignore[arg-type, return-value]


def test_hashtag_source_items(
    moderator: TextModerator, default_bundle: PolicyBundle, text_encoder: Encoder
) -> None:
    items = [TextItem(id="h", text="killyourself nobodycares", source="hashtag")]
    [result] = moderator.moderate(items, default_bundle, text_encoder.encode)
    assert result.scores["self_harm"] >= default_bundle.policy.categories["self_harm"].thresholds.review
