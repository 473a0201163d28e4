"""Scoring a batch of text items against a policy, without the HTTP layer.

``prepare`` (clean, truncate, chunk, normalise) -> the caller embeds every chunk (in the service
through BentoML's batching API, so concurrent requests share forward passes) -> ``finish``
(scores per chunk, best chunk per category, lexicon, blocklist and code-word hits, evidence).

Chunks: the text's windows of whole sentences (up to ``chunk_words`` words) and, when it has
more than one sentence, every sentence on its own, so a greeting cannot dilute a threat. A
category's score is its best chunk's. Scores come from the policy's trained scorer
(services/text/scorer.py, signal ``classifier``) when it names one, else from similarity to the
exemplars (services/text/classifier.py, signal ``semantic``); either way the evidence quotes the
category's nearest exemplar.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from modgate.policy import Policy
from modgate.wire import PolicyRef, TextItem, TextItemResult, TextMatch
from services.common import policy_ref
from services.text.classifier import SemanticClassifier
from services.text.codewords import CodeWordHit, CodeWords
from services.text.language import guess_language, low_confidence_note
from services.text.lexicon import Hit, Lexicon
from services.text.normalise import (
    Folded,
    WordSegmenter,
    chunk_spans,
    count_controls,
    fold,
    semantic_text,
    sentence_spans,
)
from services.text.scorer import TrainedScorer

Embedder = Callable[[list[str]], np.ndarray]
ScorerSource = Callable[[Policy], TrainedScorer | None]


# --- policies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyBundle:
    """Everything derived from one policy: built once per policy content digest (the service's
    services.common.PolicyStore rebuilds it when the file changes)."""

    policy: Policy
    ref: PolicyRef
    classifier: SemanticClassifier
    lexicon: Lexicon
    scorer: TrainedScorer | None = None
    codewords: CodeWords = field(default_factory=lambda: CodeWords([]))

    @property
    def calibrated(self) -> bool:
        return self.scorer is not None or self.classifier.calibration.fitted


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
        scorers: ScorerSource | None = None,
        sentences: bool = True,
        trusted_languages: frozenset[str] = frozenset({"en"}),
        exemplar_space: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self.trusted_languages = trusted_languages
        # The exemplar classifier reads MiniLM's part of the features only (Encoder.exemplar_space),
        # so a policy without a trained scorer scores exactly as it did before the scorer existed.
        self.exemplar_space = exemplar_space or (lambda vectors: vectors)
        self.scorers = scorers
        self.sentences = sentences
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
            categories,
            policy.neutral.text_exemplars,
            lambda texts: self.exemplar_space(embed([self.view(t) for t in texts])),
        )
        scorer = self.scorers(policy) if self.scorers is not None else None
        return PolicyBundle(
            policy,
            policy_ref(policy),
            classifier,
            Lexicon.for_policy(policy),
            scorer,
            CodeWords.for_policy(policy),
        )

    def prepare(self, items: Sequence[TextItem], bundle: PolicyBundle | None = None) -> list[PreparedItem]:
        """Sentences on their own, and the trained languages, only for a policy with a trained scorer
        (its training set taught it what a lone sentence looks like; exemplars never saw one)."""
        scored = bundle is not None and bundle.scorer is not None
        trusted = self.trusted_languages if scored else frozenset({"en"})
        return [
            self._prepare_one(item, sentences=scored and self.sentences, trusted=trusted) for item in items
        ]

    def _prepare_one(self, item: TextItem, *, sentences: bool, trusted: frozenset[str]) -> PreparedItem:
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
        if (note := low_confidence_note(language, trusted)) is not None:
            notes.append(note)
        chunks: list[tuple[int, int]] = []
        chunk_texts: list[str] = []
        windows = chunk_spans(text, self.chunk_words)
        for chunk in [*windows, *(sentence_spans(text, self.chunk_words) if sentences else [])]:
            view = self.view(text[chunk.start : chunk.end], all_hashtags=item.source == "hashtag")
            if view and (chunk.start, chunk.end) not in chunks:
                chunks.append((chunk.start, chunk.end))
                chunk_texts.append(view)
        if len(windows) > 1:
            notes.append(f"long text scored in {len(windows)} windows of up to {self.chunk_words} words")
        return PreparedItem(item, text, folded, chunks, chunk_texts, language, notes)

    def finish(
        self, prepared: Sequence[PreparedItem], embeddings: np.ndarray, bundle: PolicyBundle
    ) -> list[TextItemResult]:
        """embeddings: one row per chunk, in the order of prepared items' chunk_texts."""
        expected = sum(len(p.chunk_texts) for p in prepared)
        if embeddings.shape[0] != expected:
            raise ValueError(f"got {embeddings.shape[0]} embeddings for {expected} chunks")
        semantic = bundle.classifier.score(self.exemplar_space(embeddings))
        names, signal = bundle.classifier.names, "semantic"
        chunk_matrix = semantic.scores
        if bundle.scorer is not None:
            names, signal = bundle.scorer.categories, "classifier"
            chunk_matrix = bundle.scorer.score(embeddings)
        exemplar_index = {name: i for i, name in enumerate(bundle.classifier.names)}
        categories = list(bundle.policy.text_categories())
        results: list[TextItemResult] = []
        row = 0
        for item in prepared:
            n = len(item.chunk_texts)
            scores = {name: 0.0 for name in categories}
            matches: list[TextMatch] = []
            if n:
                chunk_scores = chunk_matrix[row : row + n]
                best_chunk = chunk_scores.argmax(axis=0)
                for c, name in enumerate(names):
                    if name not in scores:
                        continue
                    best = int(best_chunk[c])
                    value = float(chunk_scores[best, c])
                    scores[name] = value
                    if value >= self.evidence_min_score:
                        start, end = item.chunks[best]
                        e = exemplar_index.get(name)
                        exemplar = (
                            bundle.classifier.exemplar(e, int(semantic.nearest[row + best, e]))
                            if e is not None
                            else ""
                        )
                        matches.append(
                            TextMatch(
                                category=name,
                                score=round(value, 4),
                                signal=signal,
                                evidence=f'nearest exemplar: "{exemplar}"' if exemplar else "trained scorer",
                                span_start=start,
                                span_end=end,
                            )
                        )
            if item.folded.text.strip():
                for hit in bundle.lexicon.find(item.folded, all_hashtags=item.item.source == "hashtag"):
                    if (
                        hit.signal == "lexicon"
                        and bundle.scorer is not None
                        and item.language not in ("en", "und")
                    ):
                        # better-profanity is English: French "retard", German "Kummer". Only with a
                        # trained scorer: the default policy keeps its scores as they were.
                        continue
                    scores[hit.category] = max(scores.get(hit.category, 0.0), hit.score)
                    matches.append(_lexicon_match(hit))
                for code in bundle.codewords.find(item.text, item.language):
                    scores[code.category] = max(scores.get(code.category, 0.0), code.score)
                    matches.append(_codeword_match(code))
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
        prepared = self.prepare(items, bundle)
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


def _codeword_match(hit: CodeWordHit) -> TextMatch:
    return TextMatch(
        category=hit.category,
        score=hit.score,
        signal="codeword",
        evidence=hit.evidence,
        span_start=hit.start,
        span_end=hit.end,
    )
