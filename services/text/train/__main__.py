"""Train, calibrate and write the text scorer: ``python -m services.text.train``.

    python -m services.text.train                       # the default encoder, writes the artifact
    python -m services.text.train --compare             # every encoder, dev + test figures side by side
    python -m services.text.train --encoder minilm --out /tmp/scorers

Reads the labelled set (services/text/train/data), embeds it with the service's own encoder and
text view, fits the heads (services/text/train/fit.py: logistic regressions with several L2
strengths and a one-hidden-layer MLP with several weight decays; the best by dev F1), Platt
scales on dev, and writes ``<out>/text-scorer-<encoder>-<digest>.json``, a report next to it, and
the ``text_scorer:`` block to paste into the policy (``--update-policy`` writes it there). The
test split is read only for the report, never to choose anything.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from modgate.policy import DEFAULT_POLICY_DIR, Policy, load_policy
from modgate.wire import TextItem
from services.text.encoder import ENCODER_KINDS, Encoder, EncoderKind, load_text_encoder
from services.text.models import resolve_model
from services.text.normalise import WordSegmenter, sentence_spans
from services.text.pipeline import TextModerator
from services.text.scorer import DEFAULT_SCORER_DIR, TrainedScorer
from services.text.train import evaluate
from services.text.train.data import DATA_DIR, Example, counts, load_examples
from services.text.train.fit import Fitted, fit_categories, fit_mlp
from services.text.usem import resolve_usem

L2_GRID = (30.0, 100.0, 300.0, 1000.0)
MLP_UNITS = 128
MLP_ALPHAS = (1e-3,)  # 1e-2 and 1e-1 lost on dev in every earlier run (REPORT.md history)
DEFAULT_ENCODER: EncoderKind = "usem3+minilm"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def dataset_digest(examples: list[Example]) -> str:
    h = hashlib.sha256()
    for e in sorted(examples, key=lambda e: e.text):
        h.update(f"{e.text}\t{e.label}\t{e.kind}\t{e.lang}\n".encode())
    return h.hexdigest()


def features(moderator: TextModerator, encoder: Encoder, examples: list[Example]) -> np.ndarray:
    return encoder.encode([moderator.view(e.text) for e in examples])


def with_benign_sentences(examples: list[Example]) -> list[Example]:
    """The service also scores each sentence of a longer text on its own, so the scorer must know
    what a benign fragment looks like ("Questions can come later."): every sentence of a benign
    training post is added as a benign example. (A violating post's sentences cannot be labelled
    one by one: only one of them may carry the violation.)"""
    extra = []
    for e in examples:
        if e.violating:
            continue
        for chunk in sentence_spans(e.text, 40):
            extra.append(replace(e, text=e.text[chunk.start : chunk.end], where=f"{e.where} (sentence)"))
    return examples + extra


def dev_f1(
    fitted: Fitted, x: np.ndarray, examples: list[Example], policy: Policy, categories: list[str]
) -> float:
    review = np.array([policy.categories[c].thresholds.review for c in categories])
    flagged = (fitted.probabilities(x) >= review).any(axis=1)
    truth = np.array([e.violating for e in examples])
    tp, fp, fn = int((flagged & truth).sum()), int((flagged & ~truth).sum()), int((~flagged & truth).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def moderator_for(encoder: Encoder) -> TextModerator:
    return TextModerator(segmenter=WordSegmenter(encoder.vocabulary()))


def score_examples(
    moderator: TextModerator,
    encoder: Encoder,
    policy: Policy,
    scorer: TrainedScorer | None,
    examples: list[Example],
) -> list[evaluate.Outcome]:
    moderator.scorers = (lambda _p: scorer) if scorer is not None else None
    bundle = moderator.build_policy(policy, encoder.encode)
    items = [TextItem(id=str(i), text=e.text, source="caption") for i, e in enumerate(examples)]
    results = moderator.moderate(items, bundle, encoder.encode)
    return evaluate.outcomes(examples, results, policy)


def train(
    kind: EncoderKind, policy: Policy, examples: list[Example], threads: int, *, models: str = "all"
) -> tuple[TrainedScorer, str]:
    started = time.perf_counter()
    encoder = load_text_encoder(kind, minilm=resolve_model(), usem=resolve_usem(), threads=threads)
    moderator = moderator_for(encoder)
    categories = list(policy.text_categories())
    train_set = with_benign_sentences([e for e in examples if e.split == "train"])
    dev_set = [e for e in examples if e.split == "dev"]
    test_set = [e for e in examples if e.split == "test"]
    log(f"[{kind}] embedding {len(train_set)} train + {len(dev_set)} dev sentences ...")
    x_train, x_dev = features(moderator, encoder, train_set), features(moderator, encoder, dev_set)
    best: tuple[float, Fitted] | None = None
    labels_train, labels_dev = [e.label for e in train_set], [e.label for e in dev_set]
    candidates: list[tuple[str, Callable[[], Fitted]]] = [
        (
            f"logistic l2={l2:g}",
            partial(fit_categories, x_train, labels_train, x_dev, labels_dev, categories, l2=l2),
        )
        for l2 in L2_GRID
    ]
    if models == "all":
        candidates += [
            (
                f"mlp{MLP_UNITS}x5 alpha={a:g}",
                partial(
                    fit_mlp, x_train, labels_train, x_dev, labels_dev, categories, alpha=a, units=MLP_UNITS
                ),
            )
            for a in MLP_ALPHAS
        ]
    for name, fit in candidates:
        fitted = fit()
        f1 = dev_f1(fitted, x_dev, dev_set, policy, categories)
        log(f"[{kind}] {name}: dev F1 {f1:.3f}")
        if best is None or f1 > best[0]:
            best = (f1, fitted)
    assert best is not None
    fitted = best[1]
    digest = dataset_digest(examples)
    provisional = TrainedScorer(
        version="",
        encoder=kind,
        encoder_identity=encoder.identity,
        categories=categories,
        weights=fitted.weights,
        bias=fitted.bias,
        slope=fitted.slope,
        intercept=fitted.intercept,
        training={},
        hidden=fitted.hidden,
    )
    dev_rows = score_examples(moderator, encoder, policy, provisional, dev_set)
    test_rows = score_examples(moderator, encoder, policy, provisional, test_set)
    weights_digest = hashlib.sha256(fitted.weights.tobytes()).hexdigest()[:10]
    scorer = TrainedScorer(
        **{
            **provisional.__dict__,
            "version": f"{kind}-{weights_digest}",
            "training": {
                "dataset_sha256": digest,
                "split_sizes": dict(counts(examples)["split"]),
                "model": fitted.model,
                "regularisation": fitted.l2,
                "dev": evaluate.figures(dev_rows),
                "policy": f"{policy.name}@{policy.version}",
                "seconds": round(time.perf_counter() - started, 1),
            },
        }
    )
    report = (
        f"## {kind} ({fitted.model}, regularisation {fitted.l2:g}, trained in "
        f"{time.perf_counter() - started:.0f} s)\n\n"
        + evaluate.markdown(f"{kind}: dev (chose the model and the calibration)", dev_rows)
        + "\n"
        + evaluate.markdown(f"{kind}: test (never used to choose anything)", test_rows)
    )
    return scorer, report


def baseline_report(policy: Policy, examples: list[Example], threads: int) -> str:
    """Before this scorer: all-MiniLM-L6-v2 and the exemplars, same pipeline, same test split."""
    encoder = load_text_encoder("minilm", minilm=resolve_model(), usem=None, threads=threads)
    test_set = [e for e in examples if e.split == "test"]
    rows = score_examples(moderator_for(encoder), encoder, policy, None, test_set)
    return evaluate.markdown("baseline (MiniLM + exemplars, no trained scorer): test", rows)


def update_policy(path: Path, scorer: TrainedScorer, artifact: str) -> None:
    text = path.read_text(encoding="utf-8")
    block = f"text_scorer:\n  artifact: {artifact}\n  sha256: {scorer.sha256}\n  encoder: {scorer.encoder}\n"
    start = text.find("\ntext_scorer:\n")
    if start >= 0:
        end = text.find("\n\n", start + 1)
        text = text[: start + 1] + block + text[end + 1 if end >= 0 else len(text) :]
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.write_text(text, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m services.text.train", description=__doc__.split("\n")[0])
    parser.add_argument("--encoder", choices=ENCODER_KINDS, default=DEFAULT_ENCODER)
    parser.add_argument("--compare", action="store_true", help="train every encoder and report them all")
    parser.add_argument("--baseline", action="store_true", help="also report the exemplar scorer (MiniLM)")
    parser.add_argument("--policy", type=Path, default=DEFAULT_POLICY_DIR / "default.yaml")
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    parser.add_argument("--out", type=Path, default=DEFAULT_SCORER_DIR)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--update-policy", type=Path, action="append", default=[], metavar="YAML")
    parser.add_argument(
        "--models",
        choices=("all", "logistic"),
        default="all",
        help="logistic: skip the MLP candidates (faster)",
    )
    parser.add_argument("--report", default="REPORT.md", help="the report's file name in --out")
    args = parser.parse_args(argv)
    policy = load_policy(args.policy)
    examples = load_examples(set(policy.text_categories()), args.data)
    sizes = counts(examples)
    log(f"{len(examples)} labelled sentences: " + ", ".join(f"{k} {dict(v)}" for k, v in sizes.items()))
    kinds: list[EncoderKind] = list(ENCODER_KINDS) if args.compare else [args.encoder]
    reports = [baseline_report(policy, examples, args.threads)] if args.baseline else []
    args.out.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        scorer, report = train(kind, policy, examples, args.threads, models=args.models)
        artifact = f"text-scorer-{scorer.version}.json"
        (args.out / artifact).write_text(scorer.to_json(), encoding="utf-8")
        written = TrainedScorer.from_bytes((args.out / artifact).read_bytes())
        reports.append(report)
        print(f"wrote {args.out / artifact} sha256 {written.sha256}")
        if kind == args.encoder:
            for path in args.update_policy:
                update_policy(path, written, artifact)
                print(f"updated {path}: text_scorer -> {artifact}")
    report_text = "# Text scorer training report\n\n" + "\n".join(reports)
    (args.out / args.report).write_text(report_text, encoding="utf-8")
    print(report_text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
