"""Signal types a bank holds, and the ThreatExchange names and validators they map to.

modgate names them pdq / md5 / sha256; ThreatExchange (and HMA, which is built on it) names
them pdq / video_md5 / video_sha256 and indicator types HASH_PDQ, HASH_MD5... Lists use the
ThreatExchange names; both spellings are read. Validation is threatexchange's own
(``validate_signal_str``), so a hash HMA would refuse is refused here too.
"""

from __future__ import annotations

from enum import StrEnum

from threatexchange.signal_type.md5 import VideoMD5Signal
from threatexchange.signal_type.pdq.signal import PdqSignal
from threatexchange.signal_type.sha256 import VideoSHA256Signal
from threatexchange.signal_type.signal_base import SignalType as TxSignalType


class SignalType(StrEnum):
    PDQ = "pdq"
    MD5 = "md5"
    SHA256 = "sha256"

    @property
    def nbytes(self) -> int:
        """Bytes of one hash: PDQ 256 bits, MD5 128, SHA-256 256."""
        return _NBYTES[self]

    @property
    def te_name(self) -> str:
        """The ThreatExchange signal type name (what lists and HMA call it)."""
        return _TE_NAMES[self]

    @property
    def code(self) -> int:
        """A small integer for numpy columns."""
        return _CODES[self]


_NBYTES = {SignalType.PDQ: 32, SignalType.MD5: 16, SignalType.SHA256: 32}
_CODES = {SignalType.PDQ: 0, SignalType.MD5: 1, SignalType.SHA256: 2}
BY_CODE = {code: kind for kind, code in _CODES.items()}
_TX_TYPES: dict[SignalType, type[TxSignalType]] = {
    SignalType.PDQ: PdqSignal,
    SignalType.MD5: VideoMD5Signal,
    SignalType.SHA256: VideoSHA256Signal,
}

_TE_NAMES = {kind: tx.get_name() for kind, tx in _TX_TYPES.items()}  # get_name() runs a regex: once

# Every spelling a hash list may use, lower-cased.
_ALIASES: dict[str, SignalType] = {
    "pdq": SignalType.PDQ,
    "hash_pdq": SignalType.PDQ,
    "md5": SignalType.MD5,
    "video_md5": SignalType.MD5,
    "photo_md5": SignalType.MD5,
    "hash_md5": SignalType.MD5,
    "hash_video_md5": SignalType.MD5,
    "sha256": SignalType.SHA256,
    "video_sha256": SignalType.SHA256,
    "hash_sha256": SignalType.SHA256,
    "hash_video_sha256": SignalType.SHA256,
}
KNOWN_NAMES = ", ".join(sorted({kind.te_name for kind in SignalType} | set(SignalType)))


class SignalError(ValueError):
    """A signal type or hash string that cannot be banked; the message says which and why."""


def parse_signal_type(name: str) -> SignalType:
    kind = _ALIASES.get(name.strip().lower())
    if kind is None:
        raise SignalError(f"unknown signal type {name.strip()!r} (known: {KNOWN_NAMES})")
    return kind


def normalise_hash(kind: SignalType, value: str) -> str:
    """The lower-case hex form of `value`, validated by threatexchange for `kind`."""
    text = value.strip().lower()
    try:
        return _TX_TYPES[kind].validate_signal_str(text)
    except ValueError:
        digits = 2 * kind.nbytes
        raise SignalError(
            f"{value.strip()!r} is not a valid {kind.te_name} hash ({digits} hex digits)"
        ) from None
