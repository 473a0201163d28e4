"""Normalisation: folded text maps back to original characters; the encoder's view undoes obfuscation."""

from __future__ import annotations

import pytest

from services.text.normalise import (
    WordSegmenter,
    chunk_spans,
    count_controls,
    deleet_word,
    emoji_word,
    fold,
    hashtag_words,
    semantic_text,
    squeeze_runs,
    strip_controls,
)

WORDS = [
    "kill",
    "your",
    "yourself",
    "self",
    "where",
    "you",
    "live",
    "send",
    "nude",
    "cheap",
    "free",
    "good",
    "so",
]


@pytest.fixture(scope="module")
def segmenter() -> WordSegmenter:
    return WordSegmenter(WORDS)


def test_fold_maps_every_character_back() -> None:
    text = (
        "\x00Ｆｕｃｋ Ärger\u200b ﬁne kіll"  # NUL, fullwidth, umlaut, zero-width space, ligature, Cyrillic і
    )
    folded = fold(text)
    assert folded.text == "fuck arger fine kill"
    start = folded.text.index("fine")
    assert text[slice(*folded.to_original(start, start + 4))] == "ﬁne"  # one ligature, two letters
    start = folded.text.index("kill")
    assert text[slice(*folded.to_original(start, start + 4))] == "kіll"
    assert text[slice(*folded.to_original(0, 4))] == "Ｆｕｃｋ"


def test_confusables_only_inside_mixed_script_words() -> None:
    assert fold("привет").text == "привет"  # a Russian word stays Russian
    assert fold("hеllo").text == "hello"  # a Cyrillic е inside a Latin word is an evasion


def test_controls() -> None:
    text = "a\x00b\x07c\td\ne\u200bf\u202eg"
    assert count_controls(text) == 4
    assert strip_controls(text) == "abc\td\nefg"


@pytest.mark.parametrize(
    ("word", "expected"),
    [("k1ll", "kill"), ("n00b", "noob"), ("sh1t", "shit"), ("h@ppens", "happens"), ("10k", "10k"),
     ("5000", "5000"), ("ps5", "ps5"), ("$5", "$5"), ("covid19", "covid19")],
)  # fmt: skip
def test_deleet_word(word: str, expected: str) -> None:
    assert deleet_word(word) == expected


def test_squeeze_runs_prefers_known_words() -> None:
    vocabulary = frozenset({"good", "god", "kill", "fuck", "so"})
    assert squeeze_runs("goooood", vocabulary) == "good"
    assert squeeze_runs("kiiiill", vocabulary) == "kill"
    assert squeeze_runs("fuuuuck", vocabulary) == "fuck"
    assert squeeze_runs("soooooo", vocabulary) == "so"
    assert squeeze_runs("zzzzzt", vocabulary) == "zzt"
    assert squeeze_runs("5000", vocabulary) == "5000"


def test_hashtags_split(segmenter: WordSegmenter) -> None:
    assert hashtag_words("KillYourself", segmenter) == ["Kill", "Yourself"]
    assert hashtag_words("kill_yourself", segmenter) == ["kill", "yourself"]
    assert hashtag_words("killyourself", segmenter) == ["kill", "yourself"]
    assert hashtag_words("whereyoulive", segmenter) == ["where", "you", "live"]
    assert hashtag_words("fyp", segmenter) == ["fyp"]
    assert segmenter.split("sendnudes") == ["send", "nudes"]  # plural of a known word
    assert segmenter.split("cheapxanax") == ["cheap", "xanax"]  # unknown word kept whole


def test_emoji_words() -> None:
    assert emoji_word("🔪") == "knife"
    assert emoji_word("💊") == "pills"
    assert emoji_word("🏽") == ""  # skin tone modifier
    assert emoji_word("a") is None
    assert emoji_word("🦄") == "unicorn face"  # named by Unicode


def test_semantic_text_undoes_obfuscation(segmenter: WordSegmenter) -> None:
    vocabulary = segmenter.words
    view = lambda text: semantic_text(text, segmenter=segmenter, vocabulary=vocabulary)  # noqa: E731
    assert view("#KillYourself now 🔪🔪") == "Kill Yourself now knife knife"
    assert view("k i l l  y o u r s e l f") == "kill yourself"
    assert view("k.i.l.l yourself") == "kill yourself"
    assert view("I will k1ll u") == "I will kill u"
    assert view("soooo gooood") == "so good"
    assert view("h\u200be\u200bl\u200bl\u200bo\x00") == "hello"
    assert view("Earn 10k, 5000 dollars") == "Earn 10k, 5000 dollars"
    assert view("   ") == ""


def test_chunks_cover_sentences_within_the_word_limit() -> None:
    text = "one two three. four five six seven! eight nine ten eleven twelve thirteen fourteen"
    chunks = chunk_spans(text, 5)
    pieces = [text[c.start : c.end] for c in chunks]
    assert pieces == [
        "one two three.",
        "four five six seven!",
        "eight nine ten eleven twelve",
        "thirteen fourteen",
    ]
    assert all(len(p.split()) <= 5 for p in pieces)
    assert chunk_spans("short text", 40) == [chunk_spans("short text", 40)[0]]
    assert chunk_spans("   ", 40) == []


def test_chunks_of_a_long_transcript() -> None:
    text = " ".join(f"Sentence {i} is here." for i in range(300))
    chunks = chunk_spans(text, 40)
    assert all(len(text[c.start : c.end].split()) <= 40 for c in chunks)
    assert chunks[0].start == 0 and chunks[-1].end == len(text)
    # Windows follow each other without gaps in the words.
    assert sum(len(text[c.start : c.end].split()) for c in chunks) == len(text.split())


def test_hashtag_items_split_bare_words(segmenter: WordSegmenter) -> None:
    text = "killyourself whereyoulive #fyp 🔪"
    assert (
        semantic_text(text, segmenter=segmenter, all_hashtags=True)
        == "kill yourself where you live fyp knife"
    )
    assert semantic_text(text, segmenter=segmenter) == "killyourself whereyoulive fyp knife"
