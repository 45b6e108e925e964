"""``python -m wasmlab.cli``."""

from wasmlab.cli import main

main(prog_name="wasmlab")  # its usage lines name the command a user types
