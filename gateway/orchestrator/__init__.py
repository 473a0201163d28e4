"""The models pipeline: split, fan out to the model services, fuse, build the Verdict.

core.py     Orchestrator.run(job): routes -> split -> fan-out -> fusion -> Verdict
fanout.py   one request's plan: which modalities run or are skipped, when each starts
calls.py    each modality's calls to speech / vision / text, as a ModalityOutcome
items.py    the text items (title ... metadata) and transcript items sent to text
ocr.py      on-screen text read by vision: its cues as text items, the verdict's on_screen_text
text_work.py  text in bounded batches; the lane where multi-batch text yields to small requests
state.py    what one request collects: the fusion input and what the verdict reports
results.py  checks on service answers (policy version, variant, every item answered)
shadow.py   shadow canary copies, judged against the decision after the verdict
verdict.py  fusion span, metrics bookkeeping, the Verdict proto
coverage.py the streams no modality saw, in the verdict (degraded when a limit left some out)
"""

from gateway.orchestrator.core import Orchestrator

__all__ = ["Orchestrator"]
