"""Make sure every codec module is imported (and so registered) before any codec test runs.

``codec/__init__.py`` may or may not import the codec modules; ``load_codecs`` imports them
explicitly, and the optional ones (``rans``, ``jpeg``) only if they exist.
"""

from tests.codec.checker import load_codecs

load_codecs()
