"""Encoders and decoders for the file formats mailstate writes, one module per format.

Each encoder applies the format's own quoting rules or refuses a value that the format cannot
carry; nothing is trusted to be "already safe". Each decoder is the exact inverse, so that
``parse(render(state)) == state``.
"""
