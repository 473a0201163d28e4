"""file:// media_uri resolution: confined to the media root."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway import errors
from gateway.media.source import resolve_file_uri, uri_scheme

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    media = tmp_path / "media"
    (media / "sub").mkdir(parents=True)
    (media / "sub" / "clip.mp4").write_bytes(b"x" * 100)
    (tmp_path / "secret.mp4").write_bytes(b"secret")
    (media / "escape.mp4").symlink_to(tmp_path / "secret.mp4")
    (media / "inside-link.mp4").symlink_to(media / "sub" / "clip.mp4")
    return media


def test_file_uri_under_root_resolves(root: Path) -> None:
    assert resolve_file_uri((root / "sub" / "clip.mp4").as_uri(), root, 1000) == root / "sub" / "clip.mp4"
    assert (
        resolve_file_uri(f"file://localhost{root}/inside-link.mp4", root, 1000) == root / "sub" / "clip.mp4"
    )


@pytest.mark.parametrize(
    ("uri_template", "error", "fragment"),
    [
        ("file://{root}/../secret.mp4", errors.BadMediaUri, "path traversal"),
        ("file://{root}/sub/%2E%2E/../secret.mp4", errors.BadMediaUri, "path traversal"),
        ("file://{root}/escape.mp4", errors.BadMediaUri, "outside"),
        ("file://{root}/sub", errors.BadMediaUri, "not a regular file"),
        ("file://{root}/nope.mp4", errors.BadMediaUri, "does not exist"),
        ("file://otherhost{root}/sub/clip.mp4", errors.BadMediaUri, "host"),
        ("file:relative.mp4", errors.BadMediaUri, "absolute"),
        ("file://{root}/sub/clip.mp4%00.txt", errors.BadMediaUri, "absolute"),
    ],
)
def test_file_uris_outside_the_root_are_rejected(
    root: Path, uri_template: str, error: type[errors.GatewayError], fragment: str
) -> None:
    with pytest.raises(error, match=fragment) as caught:
        resolve_file_uri(uri_template.format(root=root), root, 1000)
    assert caught.value.code.name == "INVALID_ARGUMENT"


def test_file_uri_limits_and_disabled_root(root: Path) -> None:
    with pytest.raises(errors.MediaTooLarge):
        resolve_file_uri((root / "sub" / "clip.mp4").as_uri(), root, 99)
    with pytest.raises(errors.PermissionDenied, match="MODGATE_GATEWAY_MEDIA_ROOT"):
        resolve_file_uri((root / "sub" / "clip.mp4").as_uri(), None, 1000)


def test_uri_schemes() -> None:
    assert [uri_scheme(u) for u in ("file:///a", "HTTP://h/a", "https://h/a")] == ["file", "http", "https"]
    for bad in ("ftp://h/a", "/plain/path.mp4", "data:video/mp4;base64,AAAA", "x" * 5000):
        with pytest.raises(errors.BadMediaUri):
            uri_scheme(bad)
