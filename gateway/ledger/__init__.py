"""The gateway's verdict ledger: commit before reply, idempotency, spool (modgate/store is the store).

- entry.py        LedgerEntry (caller, request id, request digest, deadline) and request_digest()
- ledger.py       VerdictLedger.decide(entry, policy, compute): stored answer, coalescing, commit
- records.py      Verdict -> VerdictRecord, and a stored verdict's reply
- maintenance.py  LedgerMaintenance: spool drain and retention pruning in the background
"""

from gateway.ledger.entry import LedgerEntry, caller_name, request_digest
from gateway.ledger.ledger import VerdictLedger
from gateway.ledger.maintenance import LedgerMaintenance

__all__ = ["LedgerEntry", "LedgerMaintenance", "VerdictLedger", "caller_name", "request_digest"]
