"""From image embeddings to calibrated per-category scores.

For a frame embedding x (unit norm), category c with prompt ensemble embedding e_c (the
renormalised mean of its prompts' unit embeddings) and the policy's neutral prompts n_j:

    share_c = exp(L x.e_c) / (exp(L x.e_c) + sum_j exp(L x.n_j))      L = the model's logit scale
    score_c = sigmoid((share_c - threshold_c) / temperature_c)        per-category, from the policy

Each category competes only with the neutral anchors, not with other categories, so a frame can
score high on several categories (multi-label). `best_prompts` names the single prompt of the
ensemble closest to the frame, as evidence.
"""

from __future__ import annotations

import numpy as np

from .prompts import PromptBank


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # overflow-free logistic


def category_shares(image_emb: np.ndarray, bank: PromptBank, logit_scale: float) -> np.ndarray:
    """(n_frames, n_categories) softmax share of each category against the neutral prompts."""
    category_logits = logit_scale * (image_emb @ bank.class_embeddings.T)  # (n, C)
    neutral_logits = logit_scale * (image_emb @ bank.neutral_embeddings.T)  # (n, M)
    m = neutral_logits.max(axis=1, keepdims=True)
    neutral_lse = m + np.log(np.exp(neutral_logits - m).sum(axis=1, keepdims=True))  # (n, 1)
    return _sigmoid(category_logits - neutral_lse)


def score_frames(
    image_emb: np.ndarray, bank: PromptBank, logit_scale: float
) -> tuple[list[dict[str, float]], list[dict[str, str]]]:
    shares = category_shares(image_emb, bank, logit_scale)
    calibrated = _sigmoid((shares - bank.thresholds) / bank.temperatures)
    per_prompt = image_emb @ bank.prompt_embeddings.T  # (n, P)
    scores: list[dict[str, float]] = []
    best: list[dict[str, str]] = []
    for row in range(image_emb.shape[0]):
        scores.append({name: float(calibrated[row, c]) for c, name in enumerate(bank.categories)})
        best.append(
            {
                name: bank.prompts[start + int(np.argmax(per_prompt[row, start:stop]))]
                for name, (start, stop) in zip(bank.categories, bank.prompt_ranges, strict=True)
            }
        )
    return scores, best
