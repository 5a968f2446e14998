"""Photos lose every metadata block (GPS included) and stand upright; invitation links are
signed, tied to one sale, and carry no contact data."""

from __future__ import annotations

import base64
import io
from datetime import date

import pytest
from PIL import Image

from publisher.customers import invites, photos
from tests.customers.photokit import gps_jpeg, has_gps, metadata

SECRET = invites.secret_for("a session secret for tests")


def test_photo_loses_gps_and_all_exif_and_is_turned_and_resized() -> None:
    original = gps_jpeg(3000, 2000, orientation=6)
    assert has_gps(original)
    cleaned = photos.clean(original)
    tags, blocks = metadata(cleaned)
    assert not has_gps(cleaned)
    assert tags == {} and blocks == set()
    with Image.open(io.BytesIO(cleaned)) as stored:
        # orientation 6: the camera was turned, so the upright photo is taller than wide
        assert stored.size == (1067, 1600)
        assert stored.format == "JPEG"


def test_photo_that_is_not_one_is_refused() -> None:
    with pytest.raises(photos.PhotoError):
        photos.clean(b"GIF89a not really" + bytes(100))
    with pytest.raises(photos.PhotoError):
        photos.clean(b"x" * (photos.MAX_BYTES + 1))


def test_invitation_round_trip_and_no_receipt_or_contact_inside() -> None:
    token = invites.make(SECRET, "berlin-1", "shop:berlin-1:R-1001", date(2026, 12, 1))
    found = invites.read(SECRET, token)
    assert found == invites.Invitation(
        invites.invitation_id(SECRET, "shop:berlin-1:R-1001"), "berlin-1", date(2026, 12, 1)
    )
    payload = base64.urlsafe_b64decode(token.split(".")[0] + "==").decode()
    assert "R-1001" not in payload and "@" not in payload
    # the same sale gives the same invitation; another sale another one
    again = invites.read(
        SECRET, invites.make(SECRET, "berlin-1", "shop:berlin-1:R-1001", date(2026, 12, 1))
    )
    other = invites.read(
        SECRET, invites.make(SECRET, "berlin-1", "shop:berlin-1:R-1002", date(2026, 12, 1))
    )
    assert again and other and again.id == found.id != other.id


def test_altered_or_foreign_invitation_is_refused() -> None:
    token = invites.make(SECRET, "berlin-1", "shop:berlin-1:R-1001", date(2026, 12, 1))
    _, rest = token.split(".", 1)
    forged = base64.urlsafe_b64encode(b'{"s":"berlin-2","d":"2026-12-01","i":"x"}').decode()
    assert invites.read(SECRET, forged.rstrip("=") + "." + rest) is None
    assert invites.read(invites.secret_for("another site"), token) is None
    assert invites.read(SECRET, token[:-2] + ("AA" if token[-2:] != "AA" else "BB")) is None
    assert invites.read(SECRET, "x" * 500) is None
