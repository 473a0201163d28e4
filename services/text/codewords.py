"""Code words and emoji codes from the policy (``categories.<c>.text.codewords``), with spans.

Word terms ("unalive", "seggs", "perico", "maal") match whole words case-insensitively, with
letters stretched ("unaliiive") and separators inside a multi-word term free (``link in bio``,
``link-in-bio``). Emoji terms ("🍃🔌", "❄️") match their code points wherever they occur,
variation selectors and skin tones ignored. A list of one language applies to text guessed to
be in that language or of no telling (``und``: short posts), never to text guessed to be in
another, because many code words are ordinary words elsewhere ("maal" is goods in Hindi).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from modgate.policy import Policy

_IGNORED = re.compile("[\ufe0e\ufe0f\u200d\U0001f3fb-\U0001f3ff]")


@dataclass(frozen=True)
class CodeWordHit:
    category: str
    term: str
    language: str
    meaning: str
    score: float
    start: int
    end: int

    @property
    def evidence(self) -> str:
        where = "" if self.language == "any" else f" ({self.language})"
        means = f" = {self.meaning}" if self.meaning else ""
        return f'code word{where}: "{self.term}"{means}'


def _is_word_term(term: str) -> bool:
    return any(unicodedata.category(ch).startswith("L") for ch in term)


def _word_pattern(term: str) -> str:
    parts = []
    for word in term.split():
        parts.append("".join(f"{re.escape(ch)}+" if ch.isalpha() else re.escape(ch) for ch in word))
    return r"(?<!\w)" + r"[\s\-_.]*".join(parts) + r"(?!\w)"


@dataclass(frozen=True)
class _Entry:
    category: str
    term: str
    language: str
    meaning: str
    score: float
    pattern: re.Pattern[str]
    emoji: bool


class CodeWords:
    def __init__(self, entries: list[_Entry]) -> None:
        self.entries = entries

    @classmethod
    def for_policy(cls, policy: Policy) -> CodeWords:
        entries: list[_Entry] = []
        for category, rule in policy.text_categories().items():
            for group in rule.codewords:
                for term in group.terms:
                    emoji = not _is_word_term(term)
                    source = (
                        _word_pattern(term.casefold())
                        if not emoji
                        else "".join(re.escape(ch) for ch in _IGNORED.sub("", term))
                    )
                    entries.append(
                        _Entry(
                            category,
                            term,
                            group.language,
                            group.meaning,
                            group.score,
                            re.compile(source),
                            emoji,
                        )
                    )
        return cls(entries)

    def find(self, text: str, language: str) -> list[CodeWordHit]:
        if not self.entries:
            return []
        folded = text.casefold() if len(text.casefold()) == len(text) else text.lower()
        # Emoji are matched with the ignorable marks removed; keep a map back to the text's indices.
        kept = [i for i, ch in enumerate(text) if not _IGNORED.match(ch)]
        bare = "".join(text[i] for i in kept)
        base = language.split("-")[0]
        hits: list[CodeWordHit] = []
        for entry in self.entries:
            if entry.language not in ("any", base) and base != "und":
                continue
            haystack = bare if entry.emoji else folded
            for match in entry.pattern.finditer(haystack):
                if entry.emoji:
                    start, end = kept[match.start()], kept[match.end() - 1] + 1
                    while end < len(text) and _IGNORED.match(text[end]):  # its trailing selector
                        end += 1
                else:
                    start, end = match.start(), match.end()
                hits.append(
                    CodeWordHit(
                        entry.category, entry.term, entry.language, entry.meaning, entry.score, start, end
                    )
                )
        return hits
