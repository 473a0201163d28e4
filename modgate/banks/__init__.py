"""Hash banks: known content (frames by PDQ, files by MD5/SHA-256) matched before or beside the models.

A bank is a named collection of entries (signal type, hash, category, source tag, note, added
time, optional content id and the banked frame's time), kept in a bank directory that every
gateway and vision replica reads (a Kubernetes volume in a cluster, ``$MODGATE_HOME/banks``
locally). Writers (``modgate bank ...``) publish immutable snapshots and flip a pointer;
readers hot-reload when it changes.

Modules, each with one job:

- ``signals``: the signal types and the ThreatExchange names and validators they map to
- ``entries``: one bank entry and its row in the hash-list CSV
- ``listfile``: reading (all-or-nothing, line-numbered errors) and writing ThreatExchange/HMA lists
- ``snapshot`` / ``store``: the on-disk format and the writer (create, add, import, remove)
- ``pdq`` / ``digests``: PDQ (+ quality) of frames; MD5 + SHA-256 fed chunk by chunk
- ``index``: exact Hamming range search over >= 1M PDQ codes (multi-index hashing; faiss for small banks)
- ``matcher``: the readers' view of every bank, hot-reloaded, with PDQ and exact lookups
- ``results``: matcher hits as the wire's HashResult
- ``rules``: the policy's video rule and exact short-circuit applied to matches
- ``checks``: the start-time check that every bank a policy names exists
- ``config``: MODGATE_BANK_* settings; ``filehash``: hashing a media file as moderation does
- ``cli``: ``modgate bank add|import|list|remove|export``
"""
