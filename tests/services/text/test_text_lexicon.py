"""Profanity and blocklist matching: obfuscated spellings hit, with spans in the original text."""

from __future__ import annotations

import pytest

from modgate.policy import Policy, parse_policy
from services.text.lexicon import PROFANITY_EXCLUDED, Hit, Lexicon, profanity_words
from services.text.normalise import fold

BLOCKLIST_POLICY = {
    "name": "blocktest",
    "version": "1",
    "neutral": {"vision_prompts": ["a photo"], "text_exemplars": ["hello there"]},
    "categories": {
        "self_harm": {
            "description": "self harm",
            "text": {"blocklist": {"terms": ["kill yourself", "kys"], "score": 0.95}},
        },
        "drugs": {
            "description": "drugs",
            "text": {"blocklist": {"terms": ["fentanyl", "molly"], "regexes": [r"(?i)\bplug\s+in\s+\w+"]}},
        },
        "harassment": {"description": "abuse", "text": {}},
    },
}


@pytest.fixture(scope="module")
def blocklist() -> Lexicon:
    return Lexicon.for_policy(parse_policy(BLOCKLIST_POLICY))


def _find(lexicon: Lexicon, text: str) -> list[Hit]:
    return lexicon.find(fold(text))


def _spans(hits: list[Hit], text: str, signal: str | None = None) -> list[str]:
    return [text[h.start : h.end] for h in hits if signal is None or h.signal == signal]


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ("you should kill yourself", "kill yourself"),
        ("you should KILL YOURSELF now", "KILL YOURSELF"),
        ("just k1ll y0urs3lf lol", "k1ll y0urs3lf"),  # l33t
        ("k.i.l.l y.o.u.r.s.e.l.f", "k.i.l.l y.o.u.r.s.e.l.f"),  # inserted punctuation
        ("k i l l  y o u r s e l f", "k i l l  y o u r s e l f"),  # s p a c e d
        ("kiiiilll yourselffff", "kiiiilll yourselffff"),  # repeated letters
        ("killyourself", "killyourself"),  # run together
        ("kill-your-self", "kill-your-self"),
        ("#killyourself", "killyourself"),  # hashtag
        ("#justkillyourselfnow please", "killyourself"),  # inside a hashtag
        ("kіll yоurself", "kіll yоurself"),  # Cyrillic і and о among Latin letters
        ("ｋｉｌｌ ｙｏｕｒｓｅｌｆ", "ｋｉｌｌ ｙｏｕｒｓｅｌｆ"),  # fullwidth
        ("ki\u200bll your\u200dself", "ki\u200bll your\u200dself"),  # zero-width characters inside
        ("ok kys", "kys"),
        ("K Y S!!!", "K Y S"),
    ],
)
def test_blocklist_term_hits_with_span(blocklist: Lexicon, text: str, written: str) -> None:
    hits = [h for h in _find(blocklist, text) if h.signal == "blocklist" and h.category == "self_harm"]
    assert hits, f"no blocklist hit in {text!r}"
    assert written in [text[h.start : h.end] for h in hits], [text[h.start : h.end] for h in hits]
    assert all(h.score == 0.95 for h in hits)
    assert "blocklist term" in hits[0].evidence


def test_blocklist_span_maps_back_through_control_characters(blocklist: Lexicon) -> None:
    text = "\x00\x07hey \u202efentanyl\u202c for sale"
    [hit] = [h for h in _find(blocklist, text) if h.category == "drugs"]
    assert text[hit.start : hit.end] == "fentanyl"
    assert hit.start == text.index("fentanyl")


def test_blocklist_regex_hits_original_folded_and_l33t(blocklist: Lexicon) -> None:
    for text, written in [
        ("best plug in town", "plug in town"),
        ("best PLUG IN TOWN", "PLUG IN TOWN"),
        ("best p1ug 1n t0wn", "p1ug 1n t0wn"),
    ]:
        hits = [h for h in _find(blocklist, text) if h.signal == "blocklist" and h.category == "drugs"]
        assert written in _spans(hits, text), (text, _spans(hits, text))
        assert "blocklist regex" in hits[0].evidence


def test_default_policy_regexes(default_policy: Policy) -> None:
    lexicon = Lexicon.for_policy(default_policy)
    text = "Congrats!! FREE iPhones for everyone, and d0uble y0ur b1tc0in today"
    spans = _spans([h for h in _find(lexicon, text) if h.category == "spam_scam"], text, "blocklist")
    assert "FREE iPhones" in spans
    assert "d0uble y0ur b1tc0in" in spans


@pytest.mark.parametrize(
    ("text", "written", "word"),
    [
        ("you are a f.u.c.k.i.n.g loser", "f.u.c.k.i.n.g", "fucking"),
        ("f u c k you", "f u c k", "fuck"),
        ("fuuuuuck this", "fuuuuuck", "fuck"),
        ("sh!t happens", "sh!t", "shit"),
        ("what a $hit show", "$hit", "shit"),
        ("what an @ss", "@ss", "ass"),
        ("a$$hole", "a$$hole", "asshole"),
        ("f*ck this", "f*ck", "fuck"),
        ("Ｂｉｔｃｈ", "Ｂｉｔｃｈ", "bitch"),
        ("stupid b i t c h", "b i t c h", "bitch"),
        ("u r a c u n t", "c u n t", "cunt"),
        ("fück", "fück", "fuck"),
        ("bitches", "bitches", "bitches"),
    ],
)
def test_profanity_hits_obfuscated(default_policy: Policy, text: str, written: str, word: str) -> None:
    lexicon = Lexicon.for_policy(default_policy)
    hits = [h for h in _find(lexicon, text) if h.signal == "lexicon"]
    assert written in _spans(hits, text), (text, _spans(hits, text))
    hit = next(h for h in hits if text[h.start : h.end] == written)
    assert hit.category == default_policy.profanity.category
    assert hit.score == default_policy.profanity.score
    assert f"profanity: {word}" in hit.evidence


@pytest.mark.parametrize(
    "text",
    [
        "I could kill for a coffee right now",
        "This movie killed it",
        "I was sad as she left",
        "a classic class assignment for the assessment",
        "Scunthorpe United won",
        "grass, bass, pass, glass",
        "she is gay and proud",
        "the doctor examined her breasts",
        "shoot a video in Essex",
        "analysis of a cocktail",
        "I sob every time",
        "pen island",
        "as soon as possible",
        "10k steps and 5000 calories, ps5 in 4k",
        "he's a real hero",
    ],
)
def test_no_profanity_in_clean_text(default_policy: Policy, text: str) -> None:
    assert _find(Lexicon.for_policy(default_policy), text) == []


def test_wildcard_needs_enough_letters(default_policy: Policy) -> None:
    lexicon = Lexicon.for_policy(default_policy)
    assert _find(lexicon, "s**t") == []  # shit, slut, scat...: too ambiguous to call
    assert _find(lexicon, "****") == []


def test_profanity_off_when_policy_disables_it() -> None:
    data = {**BLOCKLIST_POLICY, "profanity": {"enabled": False, "category": "harassment"}}
    lexicon = Lexicon.for_policy(parse_policy(data))
    assert _find(lexicon, "fuck this") == []
    assert [h.category for h in _find(lexicon, "kys")] == ["self_harm"]


def test_excluded_words_are_really_in_the_list() -> None:
    """The exclusions name real list entries (a typo would silently exclude nothing)."""
    raw = {w.lower() for w in profanity_words()} | PROFANITY_EXCLUDED
    words = set(profanity_words())
    assert not (words & PROFANITY_EXCLUDED)
    assert {"kill", "gay", "breasts", "weed", "murder"} <= PROFANITY_EXCLUDED
    assert {"fuck", "bitch", "cunt"} <= raw and {"fuck", "bitch", "cunt"} <= words
    assert len(words) > 400


def test_overlapping_hits_keep_the_longest(default_policy: Policy) -> None:
    text = "motherfucker"
    hits = _find(Lexicon.for_policy(default_policy), text)
    assert [(h.start, h.end) for h in hits] == [(0, len(text))]


def test_hashtag_items_find_blocklist_terms_inside_bare_words(blocklist: Lexicon) -> None:
    text = "pleasekillyourselfnow fyp"
    assert _find(blocklist, text) == []  # ordinary text: whole words only
    hits = blocklist.find(fold(text), all_hashtags=True)
    assert [text[h.start : h.end] for h in hits] == ["killyourself"]
