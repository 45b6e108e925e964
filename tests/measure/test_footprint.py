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


def test_glibc_thread_arenas_are_found_in_maps_and_nothing_else_is():
    # Two arenas (one partly committed, one whole), a pool reservation, a file and an unaligned 64 MiB mapping.
    maps = "\n".join([
        "5555d000-5555e000 r--p 00000000 fd:00 123   /usr/bin/python3.11",
        "7f0000000000-7f0000021000 rw-p 00000000 00:00 0 ",
        "7f0000021000-7f0004000000 ---p 00000000 00:00 0 ",
        "7f0004000000-7f0008000000 rw-p 00000000 00:00 0 ",
        "7f0008000000-7f0010000000 ---p 00000000 00:00 0 ",  # a 128 MiB reservation right after: not an arena's tail
        "7f0010001000-7f0014001000 rw-p 00000000 00:00 0 ",  # 64 MiB, but not on a 64 MiB boundary
        "7f0020000000-7f0020021000 rw-p 00000000 00:00 0 ",
        "7f0020021000-7f0022000000 ---p 00000000 00:00 0 ",  # starts like an arena, ends short of 64 MiB
        "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0    [stack]",
    ])
    assert footprint.arena_bytes(maps) == 2 * footprint.ARENA_BYTES


def test_the_address_space_leaves_out_arenas_that_threads_make():
    import concurrent.futures

    before = footprint.now().address_space
    with concurrent.futures.ThreadPoolExecutor(4) as pool:  # threads that allocate at once make arenas
        list(pool.map(lambda _: [bytearray(512) for _ in range(50_000)], range(16)))
    arenas = footprint.arena_bytes(footprint.MAPS.read_text())
    assert arenas >= footprint.ARENA_BYTES
    # Thread stacks (8 MiB each, unmapped when the threads end) and small mappings come and go; 64 MiB arenas do not.
    assert footprint.now().address_space - before < footprint.ARENA_BYTES
