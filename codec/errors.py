"""The one exception the codec library raises for bad configs, bad inputs and bad payloads."""


class CodecError(ValueError):
    """A codec config, an input tensor or a payload is invalid; the message says which and why."""
