"""Policy replay: stored verdicts re-fused under another policy, without calling a model.

- engine.py     replay(store, policy, since=, limit=) -> ReplayReport
- inputs.py     which policy fields are re-fusable and which need a rescan (the table)
- report.py     ReplayReport: the decision-change matrix, rescan warnings, biggest changes
- synthetic.py  synthetic stored verdicts (the replay test and bench/replay.py)

`modgate replay` (modgate/tools/replay_cmd.py) is the command line.
"""

from gateway.replay.engine import replay
from gateway.replay.inputs import InputChange, InputCheck, check_inputs
from gateway.replay.report import ReplayReport

__all__ = ["InputChange", "InputCheck", "ReplayReport", "check_inputs", "replay"]
