"""Channel test fixtures live in ``storybook`` so test modules can import the helpers too."""

from tests.channels.storybook import context

__all__ = ["context"]
