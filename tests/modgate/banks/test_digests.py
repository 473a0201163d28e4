"""MD5 + SHA-256 fed chunk by chunk equal hashlib over the whole bytes."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from modgate.banks.digests import ContentDigests


def test_incremental_digests_equal_one_pass(tmp_path: Path) -> None:
    data = np.random.default_rng(3).integers(0, 256, 3 * (1 << 20) + 17, dtype=np.uint8).tobytes()
    digests = ContentDigests()
    for start in range(0, len(data), 65_537):  # uneven chunks, as gRPC stream messages arrive
        digests.update(memoryview(data)[start : start + 65_537])
        assert digests.md5 == hashlib.md5(data[: start + 65_537]).hexdigest()  # readable mid-stream
    assert (digests.md5, digests.sha256, digests.size) == (
        hashlib.md5(data).hexdigest(),
        hashlib.sha256(data).hexdigest(),
        len(data),
    )
    path = tmp_path / "upload.bin"
    path.write_bytes(data)
    on_disk = ContentDigests.of_file(path)
    in_memory = ContentDigests.of_bytes(data)
    assert on_disk.md5 == in_memory.md5 == digests.md5
    assert on_disk.sha256 == in_memory.sha256 == digests.sha256


def test_whole_bytes_digests_below_and_above_the_parallel_size() -> None:
    data = np.random.default_rng(4).integers(0, 256, 3 * (1 << 20) + 17, dtype=np.uint8).tobytes()
    for size in (0, 1000, (1 << 20) - 1, 1 << 20, len(data)):  # one thread below 1 MiB, two from it
        part = data[:size]
        digests = ContentDigests.of_bytes(memoryview(part))
        assert (digests.md5, digests.sha256, digests.size) == (
            hashlib.md5(part).hexdigest(),
            hashlib.sha256(part).hexdigest(),
            size,
        )
