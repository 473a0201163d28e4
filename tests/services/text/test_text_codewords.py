"""Code words and emoji codes from the policy: spans, stretching, language gating."""

from __future__ import annotations

from modgate.policy import Policy, parse_policy
from services.text.codewords import CodeWords


def policy_with(codewords: dict[str, list[dict[str, object]]]) -> Policy:
    return parse_policy(
        {
            "name": "cw",
            "version": "1",
            "neutral": {"vision_prompts": ["a photo"], "text_exemplars": ["hello there"]},
            "categories": {
                name: {"description": name, "text": {"exemplars": ["x"], "codewords": groups}}
                for name, groups in codewords.items()
            },
            "profanity": {"enabled": False},
        }
    )


CW = CodeWords.for_policy(
    policy_with(
        {
            "drugs": [
                {"terms": ["❄️🔌", "🍃🔌"], "meaning": "plug", "score": 0.6},
                {"language": "es", "terms": ["perico"], "meaning": "cocaine"},
            ],
            "self_harm": [{"terms": ["sewer slide", "unalive yourself"], "score": 0.7}],
            "hate": [{"terms": ["(((they)))"]}],
        }
    )
)


def test_emoji_codes_match_with_or_without_variation_selectors_and_span_them_whole() -> None:
    for text in ("got ❄️🔌 here", "got ❄🔌 here", "dm 🍃🔌🔥"):
        hits = CW.find(text, "en")
        assert [h.category for h in hits] == ["drugs"], text
        assert text[hits[0].start : hits[0].end].replace("\ufe0f", "") in ("❄🔌", "🍃🔌")
    assert CW.find("snow ❄️ and a plug 🔌", "en") == []  # apart, they are not the code


def test_words_match_whole_stretched_and_with_separators() -> None:
    text = "just go sewer-sliiide already, or unalive   yourself"
    hits = CW.find(text, "en")
    assert sorted(text[h.start : h.end] for h in hits) == ["sewer-sliiide", "unalive   yourself"]
    assert all(h.category == "self_harm" and h.score == 0.7 for h in hits)
    assert CW.find("the sewer slideshow", "en") == []  # whole words only
    assert "code word" in hits[0].evidence


def test_a_language_list_applies_to_its_language_and_to_undetermined_text_only() -> None:
    assert [h.term for h in CW.find("tienes perico?", "es")] == ["perico"]
    assert [h.term for h in CW.find("perico?", "und")] == ["perico"]
    assert CW.find("my perico parrot talks", "en") == []
    assert "(es)" in CW.find("tienes perico?", "es")[0].evidence


def test_punctuation_terms() -> None:
    hits = CW.find("you know (((they))) run it", "en")
    assert [h.category for h in hits] == ["hate"]


def test_the_multilingual_policy_has_code_words_in_several_languages(multilingual_policy: Policy) -> None:
    languages = {
        g.language for rule in multilingual_policy.text_categories().values() for g in rule.codewords
    }
    assert {"any", "es", "pt", "hi", "id"} <= languages
