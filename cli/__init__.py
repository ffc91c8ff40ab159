"""The ``slicer`` command (``cli.main``): the top of the house. It may import every package;
no package imports it."""
