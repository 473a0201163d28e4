"""Cut Whisper segments at sentence ends, using the word timestamps.

Whisper's segments follow its 30 s windows and timestamp tokens, not sentences: two sentences
spoken without a long pause often come back as one segment ("Hi everyone, thanks for watching.
I know where you live..."). A segment is what the text service scores and what evidence times
point at, so a greeting glued to a threat would both dilute the threat's score and move its
evidence to the greeting. Each sentence therefore becomes its own segment, timed by its words.
"""

from __future__ import annotations

from dataclasses import dataclass

# Terminal punctuation Whisper writes (Latin, CJK, Devanagari, Arabic, ellipsis).
_SENTENCE_END = (".", "!", "?", "…", "。", "！", "？", "।", "؟")
# A closing quote or bracket may follow the terminal mark: 'he said "stop."'
_TRAILING = "\"')]}»”’"


@dataclass(frozen=True)
class Word:
    start_s: float
    end_s: float
    text: str  # as the engine wrote it, leading space included


def ends_sentence(word: str) -> bool:
    return word.strip().rstrip(_TRAILING).endswith(_SENTENCE_END)


def split_sentences(words: tuple[Word, ...] | list[Word]) -> list[list[Word]]:
    """Groups of consecutive words, each group ending at a sentence end (the last group may not)."""
    groups: list[list[Word]] = []
    current: list[Word] = []
    for word in words:
        current.append(word)
        if ends_sentence(word.text):
            groups.append(current)
            current = []
    if current:
        groups.append(current)
    return groups


def sentence_text(words: list[Word]) -> str:
    return "".join(w.text for w in words).strip()
