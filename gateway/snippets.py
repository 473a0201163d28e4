"""Evidence snippets: the words a reviewer reads beside a score, short and whitespace-folded."""

from __future__ import annotations

from modgate.wire import TextMatch

SNIPPET_CHARS = 120


def short_snippet(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 3] + "..."


def matched_words(text: str, match: TextMatch | None) -> str:
    """The words that matched: the match's span of the item text when known (the scored
    window, or the term as written), else the term the service reports, else the item text."""
    if match is not None and match.span_start is not None and match.span_end is not None:
        start, end = max(0, match.span_start), min(len(text), match.span_end)
        if end > start:
            return short_snippet(text[start:end])
    if match is not None and match.signal in ("blocklist", "lexicon"):
        return match.evidence
    return short_snippet(text)
