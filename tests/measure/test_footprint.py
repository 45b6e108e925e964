"""Footprint figures read from /proc/self/status, and a real mapping seen in them."""

import mmap

from wasmlab.measure import footprint

STATUS = """Name:\tpython
VmPeak:\t  300000 kB
VmSize:\t  250000 kB
VmHWM:\t   40000 kB
VmRSS:\t   30000 kB
"""


def test_parse_status_reads_the_three_figures_in_bytes():
    assert footprint.parse_status(STATUS) == footprint.Footprint(250000 * 1024, 30000 * 1024, 40000 * 1024)


def test_a_mapping_shows_in_address_space_and_touching_it_in_resident_memory():
    footprint.reset_peak()
    before = footprint.now()
    region = mmap.mmap(-1, 64 << 20)
    mapped = footprint.now()
    region.write(b"x" * (32 << 20))
    touched = footprint.now()
    region.close()
    assert mapped.address_space - before.address_space >= 64 << 20
    assert touched.peak_resident - before.resident >= 30 << 20
