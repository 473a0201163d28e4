"""Text normalisation for scoring, with a way back to the caller's characters.

Two views of one item:

* :func:`fold` - for lexicon and blocklist matching: control/format characters dropped, lower
  case, accents removed, compatibility forms (fullwidth, ligatures) and mixed-script lookalikes
  mapped to ASCII. Every folded character remembers the index of the original character it came
  from, so a match is reported as a span of the text the caller sent.
* :func:`semantic_text` - for the sentence encoder: hashtags split into words, emoji named,
  l33t and s.p.a.c.e.d spellings undone, stretched letters squeezed.

Spans everywhere are ``[start, end)`` offsets in Unicode code points (Python ``str`` indices) of
the item text as received, before any cleaning or truncation.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

# --- control characters -------------------------------------------------------------------

_KEEP_WHITESPACE = frozenset("\t\n\r")


def is_control(ch: str) -> bool:
    """C0/C1 controls (except tab/newline/CR) and invisible format characters (zero-width space,
    joiners, BOM, bidi overrides, soft hyphen) - the latter are a favourite way to split words."""
    if ch in _KEEP_WHITESPACE:
        return False
    return unicodedata.category(ch) in ("Cc", "Cf")


def count_controls(text: str) -> int:
    return sum(1 for ch in text if is_control(ch))


def strip_controls(text: str) -> str:
    return "".join(ch for ch in text if not is_control(ch))


# --- folding (lexicon view) ---------------------------------------------------------------

# Cyrillic and Greek letters that look like Latin ones; mapped only inside words that also hold
# Latin letters (a mixed-script word is an evasion; a Russian sentence is not).
_CONFUSABLES = {
    "а": "a", "в": "b", "е": "e", "ё": "e", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p",
    "с": "c", "т": "t", "у": "y", "х": "x", "і": "i", "ї": "i", "ј": "j", "ѕ": "s", "ԁ": "d",
    "ӏ": "l", "α": "a", "β": "b", "ε": "e", "ι": "i", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
    "τ": "t", "υ": "u", "χ": "x",
}  # fmt: skip


@lru_cache(maxsize=4096)
def _fold_char(ch: str) -> str:
    decomposed = unicodedata.normalize("NFKD", ch)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return stripped.casefold() if stripped else ""


@dataclass(frozen=True, slots=True)
class Folded:
    original: str
    text: str
    origin: tuple[int, ...]  # origin[i]: index in `original` of the character text[i] came from

    def to_original(self, start: int, end: int) -> tuple[int, int]:
        """Map a folded [start, end) span to the original text."""
        if end <= start:
            raise ValueError(f"empty span [{start}, {end})")
        return self.origin[start], self.origin[end - 1] + 1


_WORD = re.compile(r"\S+")


def _mixed_script_positions(text: str) -> set[int]:
    positions: set[int] = set()
    for word in _WORD.finditer(text):
        token = word.group()
        if any(c in _CONFUSABLES for c in token) and any("a" <= c.lower() <= "z" for c in token):
            positions.update(i for i, c in enumerate(token, word.start()) if c in _CONFUSABLES)
    return positions


def fold(text: str) -> Folded:
    lookalikes = _mixed_script_positions(text)
    chars: list[str] = []
    origin: list[int] = []
    for index, ch in enumerate(text):
        if is_control(ch):
            continue
        mapped = _CONFUSABLES[ch] if index in lookalikes else _fold_char(ch)
        for out in mapped:
            chars.append(out)
            origin.append(index)
    return Folded(original=text, text="".join(chars), origin=tuple(origin))


# --- l33t and stretched letters -----------------------------------------------------------

# What a digit or symbol stands for inside a word; some are ambiguous (1 -> i or l).
LEET: dict[str, tuple[str, ...]] = {
    "0": ("o",), "1": ("i", "l"), "3": ("e",), "4": ("a",), "5": ("s",), "7": ("t",),
    "8": ("b",), "9": ("g",), "@": ("a",), "$": ("s",), "!": ("i",), "|": ("l", "i"),
    "+": ("t",), "€": ("e",), "¡": ("i",),
}  # fmt: skip
_INTERNAL_LEET = re.compile(r"[^\W\d_][0-9@$!|+€¡]+[^\W\d_]")


def deleet_word(word: str) -> str:
    """The first reading of a word's l33t characters (k1ll -> kill, n00b -> noob), when the word
    is l33t at all: a run of l33t characters sits between two letters. Numbers, '10k', 'ps5'
    and '$5' stay as they are."""
    if not any(ch in LEET for ch in word) or not _INTERNAL_LEET.search(word):
        return word
    return "".join(LEET[ch][0] if ch in LEET else ch for ch in word)


_RUN = re.compile(r"([^\W\d_])\1{2,}")


def squeeze_runs(word: str, vocabulary: frozenset[str] | None = None) -> str:
    """Stretched letters (fuuuuck, goooood, kiiiill): each run of 3+ becomes 2 or 1 letters,
    preferring doubles, whichever first gives a known word (vocabulary); else all doubles."""
    runs = list(_RUN.finditer(word))
    if not runs:
        return word
    doubled = _RUN.sub(r"\1\1", word)
    if vocabulary is None or len(runs) > 4:
        return doubled
    # Try every 1-or-2 choice per run, fewest singles first.
    choices = sorted(itertools.product((2, 1), repeat=len(runs)), key=lambda c: c.count(1))
    for choice in choices:
        pieces: list[str] = []
        last = 0
        for run, keep in zip(runs, choice, strict=True):
            pieces.append(word[last : run.start()] + run.group(1) * keep)
            last = run.end()
        candidate = "".join(pieces) + word[last:]
        if candidate.lower() in vocabulary:
            return candidate
    return doubled


# --- hashtags -----------------------------------------------------------------------------


class WordSegmenter:
    """Splits run-together words (#killyourself -> kill yourself) with a word list: the split
    with the fewest words wins; unknown stretches are allowed but cost more than known words."""

    def __init__(self, words: Iterable[str], max_word: int = 20) -> None:
        self.words = frozenset(w for w in words if w.isalpha() and w.isascii() and (len(w) > 1 or w in "ai"))
        self.max_word = max_word

    def _known(self, word: str) -> bool:
        if word in self.words:
            return True
        for suffix in ("s", "es", "ed", "ing"):
            if word.endswith(suffix) and len(word) > len(suffix) + 2 and word[: -len(suffix)] in self.words:
                return True
        return False

    def split(self, text: str) -> list[str]:
        if len(text) > 64 or not text.isalpha():
            return [text]
        n = len(text)
        best: list[tuple[float, list[str]] | None] = [(0.0, [])] + [None] * n
        for end in range(1, n + 1):
            for start in range(max(0, end - self.max_word), end):
                prefix = best[start]
                if prefix is None:
                    continue
                word = text[start:end]
                # Known words cost 1 (short ones a bit more); unknown stretches cost more.
                known = self._known(word)
                cost = (1.0 + (0.5 if len(word) <= 2 else 0.0)) if known else 2.0 + 0.25 * len(word)
                total = prefix[0] + cost
                current = best[end]
                if current is None or total < current[0]:
                    best[end] = (total, [*prefix[1], word])
        result = best[n]
        return result[1] if result else [text]


_CAMEL = re.compile(r"(?<=[a-z])(?=[A-Z])|(?<=[A-Za-z])(?=\d)|(?<=\d)(?=[A-Za-z])|_+")


def hashtag_words(tag: str, segmenter: WordSegmenter | None) -> list[str]:
    parts = [p for p in _CAMEL.split(tag) if p]
    words: list[str] = []
    for part in parts:
        if segmenter is not None and part.islower() and len(part) >= 6:
            words.extend(segmenter.split(part))
        else:
            words.append(part)
    return words


# --- emoji --------------------------------------------------------------------------------

# Emoji whose Unicode name hides the meaning they carry in moderation (the rest are named by
# their Unicode name, which reads well enough: "pill", "skull", "pistol").
_EMOJI_WORDS = {
    "🔪": "knife", "🗡": "dagger", "🔫": "gun", "💣": "bomb", "🩸": "blood", "⚰": "coffin",
    "🪦": "grave", "💀": "skull", "☠": "skull", "💊": "pills", "💉": "syringe", "❄": "snow cocaine",
    "🍁": "weed", "🍃": "weed", "🌿": "weed", "🍄": "mushrooms", "🔌": "plug dealer", "🍆": "penis",
    "🍑": "butt", "💦": "cum", "👅": "tongue", "🔞": "adults only", "🖕": "fuck you", "🤡": "clown",
    "🐀": "rat", "🐒": "monkey", "🦍": "gorilla", "🐷": "pig", "🤑": "money", "💰": "money",
    "💸": "money", "💵": "money", "📈": "profit", "🚀": "rocket", "🎁": "gift", "🔥": "fire",
    "😂": "laughing", "🤣": "laughing", "😭": "crying", "❤": "love", "😍": "love", "🙏": "please",
    "💯": "hundred percent", "😡": "angry", "🤬": "cursing", "🥵": "hot",
}  # fmt: skip
_SKIN_TONES = range(0x1F3FB, 0x1F400)
_REGIONAL = range(0x1F1E6, 0x1F200)


def emoji_word(ch: str) -> str | None:
    """A word for an emoji/pictograph, '' for invisible emoji modifiers, None for anything else."""
    if ch in _EMOJI_WORDS:
        return _EMOJI_WORDS[ch]
    code = ord(ch)
    if code in _SKIN_TONES or code in _REGIONAL or ch in "\ufe0e\ufe0f\u20e3":
        return ""
    if unicodedata.category(ch) == "So" and code >= 0x2190:
        return unicodedata.name(ch, "").lower() or None
    return None


def replace_emoji(text: str) -> str:
    out: list[str] = []
    for ch in text:
        word = emoji_word(ch)
        if word is None:
            out.append(ch)
        elif word:
            out.append(f" {word} ")
    return "".join(out)


# --- semantic view ------------------------------------------------------------------------

_HASHTAG = re.compile(r"#(\w+)")
_BARE_WORD = re.compile(r"(?<![\S])(?=\w)")
# Three or more single characters joined by one separator each: "k i l l", "k.i.l.l", "k-i-l-l".
_SPACED = re.compile(r"(?<![\w@$])(?:[\w@$!][ .\-_*]){2,}[\w@$!](?![\w@$])")
_SPACES = re.compile(r"\s+")


def semantic_text(
    text: str,
    *,
    segmenter: WordSegmenter | None = None,
    vocabulary: frozenset[str] | None = None,
    all_hashtags: bool = False,
) -> str:
    """What the sentence encoder reads: obfuscations undone, hashtags and emoji as words.
    `all_hashtags`: every word is a hashtag even without '#' (an item whose source is hashtag)."""
    text = strip_controls(text)
    if all_hashtags:
        text = _BARE_WORD.sub("#", text)
    text = unicodedata.normalize("NFKC", text)
    text = replace_emoji(text)

    def _unspace(match: re.Match[str]) -> str:
        joined = re.sub(r"[ .\-_*]", "", match.group())
        joined = deleet_word(joined) if len(joined) > 2 else joined
        if segmenter is not None and joined.isalpha() and len(joined) >= 6:
            return " ".join(segmenter.split(joined.lower()))
        return joined

    text = _SPACED.sub(_unspace, text)
    text = _HASHTAG.sub(lambda m: " " + " ".join(hashtag_words(m.group(1), segmenter)) + " ", text)
    words = [squeeze_runs(deleet_word(w), vocabulary) for w in text.split()]
    return _SPACES.sub(" ", " ".join(words)).strip()


# --- chunks for long texts ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Chunk:
    start: int  # original-text span of the words in this chunk
    end: int


_SENTENCE_END = re.compile(r"[.!?…。！？]['\")\]]*$")


def chunk_spans(text: str, max_words: int) -> list[Chunk]:
    """Split a text into windows of whole sentences of at most max_words words (a longer
    sentence is cut every max_words words), so a long transcript is read piece by piece instead
    of being cut off at the encoder's 256-token limit. Texts up to max_words are one chunk."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    if not words:
        return []
    if len(words) <= max_words:
        return [Chunk(words[0][0], words[-1][1])]
    chunks: list[Chunk] = []
    sentence: list[tuple[int, int]] = []
    window: list[tuple[int, int]] = []

    def flush_window() -> None:
        if window:
            chunks.append(Chunk(window[0][0], window[-1][1]))
            window.clear()

    def add_sentence() -> None:
        for begin in range(0, len(sentence), max_words):
            piece = sentence[begin : begin + max_words]
            if len(window) + len(piece) > max_words:
                flush_window()
            window.extend(piece)
        sentence.clear()

    for i, (start, end) in enumerate(words):
        sentence.append((start, end))
        newline_after = i + 1 < len(words) and "\n" in text[end : words[i + 1][0]]
        if _SENTENCE_END.search(text[start:end]) or newline_after:
            add_sentence()
    add_sentence()
    flush_window()
    return chunks


def sentence_spans(text: str, max_words: int, *, min_words: int = 3) -> list[Chunk]:
    """Each sentence (or line) as its own chunk, so one sentence is scored without the others
    diluting it ("Hello everyone, welcome to my channel. I know where you live."). A fragment
    of fewer than `min_words` words joins the next sentence; a sentence over `max_words` is cut
    every max_words words. Returns [] for a text of one sentence (its window says it all)."""
    words = [(m.start(), m.end()) for m in _WORD.finditer(text)]
    sentences: list[list[tuple[int, int]]] = [[]]
    for i, (start, end) in enumerate(words):
        sentences[-1].append((start, end))
        newline_after = i + 1 < len(words) and "\n" in text[end : words[i + 1][0]]
        if (_SENTENCE_END.search(text[start:end]) or newline_after) and len(sentences[-1]) >= min_words:
            sentences.append([])
    if not sentences[-1]:
        sentences.pop()
    elif len(sentences) > 1 and len(sentences[-1]) < min_words:
        sentences[-2].extend(sentences.pop())
    if len(sentences) < 2:
        return []
    chunks: list[Chunk] = []
    for sentence in sentences:
        for begin in range(0, len(sentence), max_words):
            piece = sentence[begin : begin + max_words]
            chunks.append(Chunk(piece[0][0], piece[-1][1]))
    return chunks
