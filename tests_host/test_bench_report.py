"""The benchmark's report writer (tools/bench_report.py) keeps docs/PERFORMANCE.md's
History section: a run rewrites the figures and the methods, never the history."""

import bench
import bench_report


def test_a_written_report_keeps_the_history_section_as_it_is(tmp_path, monkeypatch):
    history = bench_report.kept_history()
    assert history.startswith(bench_report.HISTORY_START) and "\n## History\n" in history
    monkeypatch.setattr(bench_report, "render", lambda r: "THE TABLES")
    out = tmp_path / "PERFORMANCE.md"
    assert bench_report.write_report({}, bench.method(), out)
    text = out.read_text()
    assert text.startswith("# Performance\n") and "\nTHE TABLES\n" in text
    assert "## How each figure is measured" in text
    assert text.endswith("\n\n" + history) and text.count(bench_report.HISTORY_START) == 1


def test_without_a_history_section_the_report_is_the_template_alone(tmp_path, monkeypatch):
    monkeypatch.setattr(bench_report, "PERFORMANCE_MD", tmp_path / "missing.md")
    monkeypatch.setattr(bench_report, "render", lambda r: "THE TABLES")
    out = tmp_path / "PERFORMANCE.md"
    assert not bench_report.write_report({}, bench.method(), out)
    assert bench_report.HISTORY_START not in out.read_text()
