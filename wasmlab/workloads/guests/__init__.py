"""Guest programs whose source lives in this repository (built by wasmlab or by ``make components``)."""
