"""Imported by import_body.py: its body holds 40 MiB of its own."""
HELD = bytearray(40 << 20)  # @BODY
