"""Scoring a batch of text items against a policy, without the HTTP layer.

``prepare`` (clean, truncate, chunk, normalise) -> the caller embeds every chunk (in the service
through BentoML's batching API, so concurrent requests share forward passes) -> ``finish``
(semantic scores per chunk, best chunk per category, lexicon and blocklist hits, evidence).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from modgate.policy import Policy
from modgate.wire import PolicyRef, TextItem, TextItemResult, TextMatch
from services.common import policy_ref
from services.text.classifier import SemanticClassifier
from services.text.language import guess_language, low_confidence_note
from services.text.lexicon import Hit, Lexicon
from services.text.normalise import Folded, WordSegmenter, chunk_spans, count_controls, fold, semantic_text

Embedder = Callable[[list[str]], np.ndarray]


# --- policies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyBundle:
    """Everything derived from one policy: built once per policy content digest (the service's
    services.common.PolicyStore rebuilds it when the file changes)."""

    policy: Policy
    ref: PolicyRef
    classifier: SemanticClassifier
    lexicon: Lexicon


# --- items ----------------------------------------------------------------------------------


@dataclass
class PreparedItem:
    item: TextItem
    text: str  # the scored text: the item's text, truncated to max_chars
    folded: Folded
    chunks: list[tuple[int, int]]  # original-text spans of the chunks that get embedded
    chunk_texts: list[str]  # what the encoder reads for each chunk
    language: str
    notes: list[str] = field(default_factory=list)


class TextModerator:
    def __init__(
        self,
        *,
        max_chars: int = 10_000,
        chunk_words: int = 40,
        evidence_min_score: float = 0.3,
        segmenter: WordSegmenter | None = None,
    ) -> None:
        self.max_chars = max_chars
        self.chunk_words = chunk_words
        self.evidence_min_score = evidence_min_score
        self.segmenter = segmenter
        self.vocabulary = segmenter.words if segmenter is not None else None

    def view(self, text: str, *, all_hashtags: bool = False) -> str:
        """The encoder's view of a text (also applied to policy exemplars, for symmetry)."""
        return semantic_text(
            text, segmenter=self.segmenter, vocabulary=self.vocabulary, all_hashtags=all_hashtags
        )

    def build_policy(self, policy: Policy, embed: Embedder) -> PolicyBundle:
        categories = {name: rule.exemplars for name, rule in policy.text_categories().items()}
        classifier = SemanticClassifier(
            categories, policy.neutral.text_exemplars, lambda texts: embed([self.view(t) for t in texts])
        )
        return PolicyBundle(policy, policy_ref(policy), classifier, Lexicon.for_policy(policy))

    def prepare(self, items: Sequence[TextItem]) -> list[PreparedItem]:
        return [self._prepare_one(item) for item in items]

    def _prepare_one(self, item: TextItem) -> PreparedItem:
        notes: list[str] = []
        text = item.text
        if len(text) > self.max_chars:
            notes.append(
                f"text has {len(text)} characters, over the {self.max_chars}-character limit "
                f"(MODGATE_TEXT_MAX_CHARS): only the first {self.max_chars} were scored"
            )
            text = text[: self.max_chars]
        controls = count_controls(text)
        if controls:
            notes.append(
                f"{controls} control/invisible character(s) ignored; spans still index the text as sent"
            )
        folded = fold(text)
        if not folded.text.strip():
            notes.append("empty text: nothing to score")
            return PreparedItem(item, text, folded, [], [], "und", notes)
        language = guess_language(folded.original)
        if (note := low_confidence_note(language)) is not None:
            notes.append(note)
        chunks: list[tuple[int, int]] = []
        chunk_texts: list[str] = []
        for chunk in chunk_spans(text, self.chunk_words):
            view = self.view(text[chunk.start : chunk.end], all_hashtags=item.source == "hashtag")
            if view:
                chunks.append((chunk.start, chunk.end))
                chunk_texts.append(view)
        if len(chunks) > 1:
            notes.append(f"long text scored in {len(chunks)} windows of up to {self.chunk_words} words")
        return PreparedItem(item, text, folded, chunks, chunk_texts, language, notes)

    def finish(
        self, prepared: Sequence[PreparedItem], embeddings: np.ndarray, bundle: PolicyBundle
    ) -> list[TextItemResult]:
        """embeddings: one row per chunk, in the order of prepared items' chunk_texts."""
        expected = sum(len(p.chunk_texts) for p in prepared)
        if embeddings.shape[0] != expected:
            raise ValueError(f"got {embeddings.shape[0]} embeddings for {expected} chunks")
        semantic = bundle.classifier.score(embeddings)
        categories = list(bundle.policy.text_categories())
        results: list[TextItemResult] = []
        row = 0
        for item in prepared:
            n = len(item.chunk_texts)
            scores = {name: 0.0 for name in categories}
            matches: list[TextMatch] = []
            if n:
                chunk_scores = semantic.scores[row : row + n]
                best_chunk = chunk_scores.argmax(axis=0)
                for c, name in enumerate(bundle.classifier.names):
                    best = int(best_chunk[c])
                    value = float(chunk_scores[best, c])
                    scores[name] = value
                    if value >= self.evidence_min_score:
                        start, end = item.chunks[best]
                        exemplar = bundle.classifier.exemplar(c, int(semantic.nearest[row + best, c]))
                        matches.append(
                            TextMatch(
                                category=name,
                                score=round(value, 4),
                                signal="semantic",
                                evidence=f'nearest exemplar: "{exemplar}"',
                                span_start=start,
                                span_end=end,
                            )
                        )
            if item.folded.text.strip():
                for hit in bundle.lexicon.find(item.folded, all_hashtags=item.item.source == "hashtag"):
                    scores[hit.category] = max(scores.get(hit.category, 0.0), hit.score)
                    matches.append(_lexicon_match(hit))
            row += n
            matches.sort(key=lambda m: (-m.score, m.span_start or 0))
            results.append(
                TextItemResult(
                    id=item.item.id,
                    scores={k: round(v, 4) for k, v in scores.items()},
                    matches=matches,
                    language=item.language,
                    notes=item.notes,
                )
            )
        return results

    def moderate(
        self, items: Sequence[TextItem], bundle: PolicyBundle, embed: Embedder
    ) -> list[TextItemResult]:
        """All steps in one call (tests, benchmarks, embedding directly without batching)."""
        prepared = self.prepare(items)
        texts = [t for p in prepared for t in p.chunk_texts]
        return self.finish(prepared, embed(texts), bundle)


def _lexicon_match(hit: Hit) -> TextMatch:
    return TextMatch(
        category=hit.category,
        score=hit.score,
        signal=hit.signal,
        evidence=hit.evidence,
        span_start=hit.start,
        span_end=hit.end,
    )
