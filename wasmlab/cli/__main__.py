"""``python -m wasmlab.cli``."""

from wasmlab.cli import main

main()
