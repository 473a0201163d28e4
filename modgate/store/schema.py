"""The verdict store's tables (SQLAlchemy Core). Alembic migrations (migrations/) create them;
tests/modgate/store keep the head migration equal to this metadata.

Times are Unix seconds (float): one portable, indexable representation on SQLite and
PostgreSQL. No media bytes are kept, only what fusion saw and what it decided.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

# JSON on SQLite, JSONB on PostgreSQL (queryable, compact).
Json = sa.JSON().with_variant(JSONB(), "postgresql")

verdicts = sa.Table(
    "verdicts",
    metadata,
    sa.Column("verdict_id", sa.String(32), primary_key=True),
    # The idempotency key: the authenticated caller ("anonymous" without auth) and its request id.
    sa.Column("caller", sa.String(128), nullable=False),
    sa.Column("request_id", sa.String(128), nullable=False),
    # sha256 of the request without its media bytes: a reused request_id with another request
    # is refused rather than answered with the other request's verdict.
    sa.Column("request_digest", sa.String(64), nullable=False),
    sa.Column("content_id", sa.String(256), nullable=False, server_default=""),
    sa.Column("received_at", sa.Float(53), nullable=False),
    sa.Column("decided_at", sa.Float(53), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),
    sa.Column("risk", sa.Float(), nullable=False),
    sa.Column("degraded", sa.Boolean(), nullable=False),
    sa.Column("policy_name", sa.String(64), nullable=False),
    sa.Column("policy_version", sa.String(64), nullable=False),
    sa.Column("policy_digest", sa.String(64), nullable=False),
    sa.Column("trace_id", sa.String(32), nullable=False, server_default=""),
    # modality -> {name, version, variant}: which model variant served each modality.
    sa.Column("models", Json, nullable=False),
    # What fusion used, enough to re-fuse under another policy (gateway/orchestrator/record.py):
    # compact JSON, zlib-compressed (records.encode_fusion). Not JSONB: nothing queries inside
    # it, and parsing tens of KB per insert was most of PostgreSQL's insert cost.
    sa.Column("fusion", sa.LargeBinary(), nullable=False),
    # The modgate.v1.Verdict as the caller received it (serialized protobuf).
    sa.Column("verdict", sa.LargeBinary(), nullable=False),
    sa.UniqueConstraint("caller", "request_id", name="uq_verdicts_caller_request"),
)
sa.Index("ix_verdicts_decided_at", verdicts.c.decided_at)
sa.Index("ix_verdicts_content_id", verdicts.c.content_id)
sa.Index("ix_verdicts_decision_decided_at", verdicts.c.decision, verdicts.c.decided_at)

# Every policy a stored verdict was decided under, by content digest: replay compares it with
# the policy it is asked to replay under (which scoring inputs changed).
policies = sa.Table(
    "policies",
    metadata,
    sa.Column("digest", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(64), nullable=False),
    sa.Column("version", sa.String(64), nullable=False),
    sa.Column("document", Json, nullable=False),
    sa.Column("first_seen", sa.Float(53), nullable=False),
)

# A request being decided: the first gateway to insert the (caller, request_id) row computes;
# duplicates, in any gateway sharing the store, wait for its verdict. expires_at bounds a
# claim whose owner died (a duplicate then takes it over).
claims = sa.Table(
    "claims",
    metadata,
    sa.Column("caller", sa.String(128), primary_key=True),
    sa.Column("request_id", sa.String(128), primary_key=True),
    sa.Column("owner", sa.String(64), nullable=False),
    sa.Column("request_digest", sa.String(64), nullable=False),
    sa.Column("claimed_at", sa.Float(53), nullable=False),
    sa.Column("expires_at", sa.Float(53), nullable=False),
)

# A reviewer's decision on a stored verdict (the review console writes them; `modgate eval
# --from-reviews` reads them as ground truth). Kept when the verdict is pruned: labels are the
# training and evaluation data model iteration needs; the verdict_id then resolves to nothing.
labels = sa.Table(
    "labels",
    metadata,
    sa.Column("label_id", sa.String(32), primary_key=True),
    sa.Column("verdict_id", sa.String(32), nullable=False),
    sa.Column("reviewer", sa.String(128), nullable=False),
    sa.Column("labelled_at", sa.Float(53), nullable=False),
    sa.Column("decision", sa.String(16), nullable=False),  # ALLOW | BLOCK
    sa.Column("category", sa.String(64), nullable=False, server_default=""),  # "" with ALLOW
    sa.Column("note", sa.Text(), nullable=False, server_default=""),
)
sa.Index("ix_labels_verdict_id", labels.c.verdict_id)
sa.Index("ix_labels_labelled_at", labels.c.labelled_at)

# The review console (modgate/console/). A lease: the reviewer working a verdict until
# expires_at; another reviewer cannot claim it before then (one row per verdict: the insert is
# the claim, so two reviewers racing for it cannot both win).
review_leases = sa.Table(
    "review_leases",
    metadata,
    sa.Column("verdict_id", sa.String(32), primary_key=True),
    sa.Column("reviewer", sa.String(128), nullable=False),
    sa.Column("claimed_at", sa.Float(53), nullable=False),
    sa.Column("expires_at", sa.Float(53), nullable=False),
)

# Every console action (login, claim, view, reveal, decide, export, refused attempts): who, when,
# on what. Never content: `detail` holds ids, categories and outcomes, not text or media.
audit = sa.Table(
    "audit",
    metadata,
    sa.Column("audit_id", sa.String(32), primary_key=True),
    sa.Column("at", sa.Float(53), nullable=False),
    sa.Column("actor", sa.String(128), nullable=False),
    sa.Column("role", sa.String(16), nullable=False, server_default=""),
    sa.Column("action", sa.String(32), nullable=False),
    sa.Column("verdict_id", sa.String(32), nullable=False, server_default=""),
    sa.Column("detail", Json, nullable=False),
)
sa.Index("ix_audit_at", audit.c.at)
sa.Index("ix_audit_verdict_id", audit.c.verdict_id)

# Small JPEGs of the frames a verdict's VISUAL evidence points at (never other frames): what a
# reviewer needs to see, blurred until revealed. Deleted with their verdict by pruning.
thumbnails = sa.Table(
    "thumbnails",
    metadata,
    sa.Column("verdict_id", sa.String(32), primary_key=True),
    sa.Column("frame_index", sa.Integer(), primary_key=True),
    sa.Column("stream_index", sa.Integer(), nullable=False, server_default="0"),
    sa.Column("time_ms", sa.Integer(), nullable=False),
    sa.Column("width", sa.Integer(), nullable=False),
    sa.Column("height", sa.Integer(), nullable=False),
    sa.Column("jpeg", sa.LargeBinary(), nullable=False),
)
