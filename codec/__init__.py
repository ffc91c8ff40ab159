"""SLICER and baseline intermediate-feature codecs."""
