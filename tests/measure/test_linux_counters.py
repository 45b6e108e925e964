"""Kernel counters: the TLB line of /proc/interrupts read right, and counters that move when work is done."""

from wasmlab.measure import linux_counters

SAMPLE = """           CPU0       CPU1
  0:         44          0   IO-APIC    2-edge      timer
NMI:          0          0   Non-maskable interrupts
TLB:     344389     319903   TLB shootdowns
"""


def test_tlb_shootdowns_are_summed_over_cpus():
    assert linux_counters.tlb_shootdowns(SAMPLE) == 344389 + 319903
    assert linux_counters.tlb_shootdowns("NMI: 0 0 Non-maskable interrupts\n") is None


def test_a_block_that_touches_new_memory_counts_its_faults():
    import mmap

    pages = mmap.mmap(-1, 64 * 4096)  # a fresh anonymous mapping: every page faults in when first written
    before = linux_counters.counts()
    for i in range(0, len(pages), 4096):
        pages[i] = 1
    spent = linux_counters.counts() - before
    pages.close()
    assert spent.minor_faults >= 64
    per = spent.per_request(64)
    assert per["minor_faults_per_request"] >= 1 and set(per) >= {"voluntary_switches_per_request", "tlb_shootdowns_per_request"}
