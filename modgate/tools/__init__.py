"""Developer tools: the `modgate` command and what it, the tests and the benchmarks share.

``cli`` (the command: ``up``, ``moderate``, ``trace``, ``demo``), ``stack`` (the local stack
of real processes), ``demo``, ``moderate_cmd`` / ``trace_cmd`` (the other subcommands),
``tracestore`` (a local OTLP receiver in SQLite), ``pgserver`` (a throwaway PostgreSQL server for
the verdict store's tests and benchmarks), ``mediagen`` (generated video, audio,
subtitles and espeak-ng speech), ``samples`` (the demo's videos, on mediagen), ``wer`` (word
error rate), ``load`` / ``faults`` (closed-loop load and service kills over the gRPC API).

Nothing in the gateway or the model services imports this package.
"""
