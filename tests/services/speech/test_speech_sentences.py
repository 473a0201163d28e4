"""Whisper segments are cut at sentence ends so each sentence is scored and timed on its own."""

from __future__ import annotations

from services.speech.engines import ChunkSegment
from services.speech.pipeline import ChunkLayout, _to_original
from services.speech.sentences import Word, ends_sentence, sentence_text, split_sentences
from services.speech.vad import Region


def words(*spec: tuple[float, float, str]) -> tuple[Word, ...]:
    return tuple(Word(a, b, t) for a, b, t in spec)


GREETING_AND_THREAT = words(
    (0.3, 0.5, " Hi"),
    (0.5, 0.9, " everyone,"),
    (0.9, 1.6, " thanks"),
    (1.6, 2.4, " for watching."),
    (4.5, 4.8, " I"),
    (4.8, 5.2, " know"),
    (5.2, 6.0, " where you live!"),
    (6.2, 6.6, " Really"),
)


def test_sentence_ends_follow_terminal_punctuation_and_closing_quotes() -> None:
    assert ends_sentence(" live.") and ends_sentence(' "stop!"') and ends_sentence(" why?)")
    assert ends_sentence(" 終わり。") and ends_sentence(" ¿qué?")
    assert not ends_sentence(" everyone,") and not ends_sentence(" Mr") and not ends_sentence(" 3,5")


def test_split_keeps_every_word_in_order() -> None:
    groups = split_sentences(GREETING_AND_THREAT)
    assert [sentence_text(g) for g in groups] == [
        "Hi everyone, thanks for watching.",
        "I know where you live!",
        "Really",
    ]
    assert [w for g in groups for w in g] == list(GREETING_AND_THREAT)


def test_a_two_sentence_segment_becomes_two_timed_segments() -> None:
    # One VAD region starting at 0 s of the original audio: chunk time == original time.
    layout = ChunkLayout([Region(start=0, stop=16_000 * 8)])
    segment = ChunkSegment(
        text="Hi everyone, thanks for watching. I know where you live! Really",
        start_s=0.0,
        end_s=7.0,
        avg_logprob=-0.2,
        no_speech_prob=0.01,
        words=GREETING_AND_THREAT,
    )
    out = _to_original(layout, segment)
    assert [s.text for s in out] == [
        "Hi everyone, thanks for watching.",
        "I know where you live!",
        "Really",
    ]
    assert (out[1].start_s, out[1].end_s) == (4.5, 6.0)
    assert (out[0].start_s, out[0].end_s) == (0.3, 2.4)
    assert all(s.avg_logprob == -0.2 for s in out)


def test_a_segment_without_words_keeps_its_own_times() -> None:
    layout = ChunkLayout([Region(start=0, stop=16_000 * 4)])
    segment = ChunkSegment(text="Hello.", start_s=0.5, end_s=1.5, avg_logprob=-0.1, no_speech_prob=0.0)
    out = _to_original(layout, segment)
    assert [(s.text, s.start_s, s.end_s) for s in out] == [("Hello.", 0.5, 1.5)]
