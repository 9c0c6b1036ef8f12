"""`python -m benchmarks` writes its tables into a marked section of RESULTS.md, replaced on each run."""

from benchmarks.__main__ import BEGIN, END, replace_section


def test_results_section_is_appended_once_then_replaced_in_place():
    first = replace_section("# Results\n\nintro\n", "table 1")
    assert first.count(BEGIN) == 1 and first.count(END) == 1 and "intro" in first and "table 1" in first
    second = replace_section(first + "\n## Later section\n", "table 2")
    assert "table 1" not in second and "table 2" in second
    assert second.count(BEGIN) == 1 and second.endswith("## Later section\n")
