"""The reference PDS for the consent tests, the same session fixture the PDS tests use."""

from tests.pds.conftest import pds

__all__ = ["pds"]
