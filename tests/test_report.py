"""`cnncost report`: one self-contained HTML page with the architecture as a graph.

The page's views are the analysis collapsed to each depth (the same rows as `analyze
--depth N`); every node carries its fills for each cost and its row; the page needs no
network. Where a Chromium is installed, a test opens the page headless and checks the
DOM after the page's script ran.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import pytest
from click.testing import CliRunner

import cnncost
from cnncost.cli import main

pytest.importorskip("grandalf")


def report(*args: str):
    return CliRunner().invoke(main, ["report", *args])


def views(page: str) -> dict[int, int]:
    """depth -> nodes drawn, from the page."""
    return {int(d): int(n) for d, n in re.findall(r'class="view" data-depth="(\d+)" '
                                                 r'data-nodes="(\d+)"', page)}


def test_resnet50_page_has_one_view_per_depth_with_the_table_rows(tmp_path):
    out = tmp_path / "resnet50.html"
    result = report("resnet50", "-o", str(out))
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    analysis = cnncost.analyze("resnet50")
    assert views(page) == {1: 9, 2: 23, 3: 91, 0: 175}
    for depth, nodes in views(page).items():
        assert nodes == len(analysis.collapse(depth))  # the rows of analyze --depth N
        assert page.count(f'data-depth="{depth}"') >= 3  # view, button, legends
    assert page.count('class="node"') == sum(views(page).values())
    assert page.count("<svg") == 4
    assert "25,557,032" in page and "4,089,184,256" in page  # totals
    assert 'data-metric="macs"' in page and 'data-metric="activations"' in page
    assert "<td>layer4</td>" in page  # the per-stage table
    assert not re.search(r'(src|href)="(https?:)?//', page)  # nothing fetched at view time


def test_colours_follow_the_cost_on_a_log_scale():
    from cnncost.report.page import NO_COST, VIRIDIS, colours, ink

    fills, low, high = colours([0, 10, 1000, 100])
    assert (low, high) == (10, 1000)
    assert fills[0] == NO_COST and fills[1] == VIRIDIS[0] and fills[2] == VIRIDIS[-1]
    assert fills[3] == VIRIDIS[4]  # 100 is half way between 10 and 1000 on a log scale
    assert ink(VIRIDIS[0]) == "#ffffff" and ink(VIRIDIS[-1]) == "#000000"


def test_names_from_a_spec_are_escaped(tmp_path):
    spec = tmp_path / "x.yaml"
    spec.write_text('name: "<script>alert(1)</script>"\ndescription: "<b>d</b>"\n'
                    'input: [3, 8, 8]\nlayers:\n  - {op: conv, out: 4, kernel: 3}\n')
    result = report(str(spec))
    assert result.exit_code == 0, result.output
    assert "<script>alert(1)" not in result.output and "<b>d</b>" not in result.output
    assert "&lt;script&gt;" in result.output and "&lt;b&gt;d&lt;/b&gt;" in result.output


def test_bad_input_exits_2_and_writes_nothing(tmp_path):
    out = tmp_path / "r.html"
    result = report("resnet5", "-o", str(out))
    assert result.exit_code == 2 and "did you mean 'resnet50'" in result.stderr
    assert not out.exists()


def test_without_grandalf_the_error_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "grandalf", None)  # import grandalf fails
    result = report("lenet5")
    assert result.exit_code == 2
    assert "pip install 'cnncost[report]'" in result.stderr


def test_a_large_model_renders_every_layer(tmp_path):
    result = report("densenet201", "-o", str(tmp_path / "d.html"))
    assert result.exit_code == 0
    drawn = views((tmp_path / "d.html").read_text(encoding="utf-8"))
    assert drawn[0] == len(cnncost.analyze("densenet201").rows) == 707


BROWSER = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.mark.skipif(BROWSER is None, reason="no Chromium installed (apt-get install chromium)")
def test_the_page_works_in_a_headless_browser(tmp_path):
    """The script ran to its end (it marks the body) and switched on the first view and
    its legend; the drawn nodes are in the DOM."""
    out = tmp_path / "mobilenet_v2.html"
    assert report("mobilenet_v2", "-o", str(out)).exit_code == 0
    done = subprocess.run([BROWSER, "--headless", "--no-sandbox", "--disable-gpu",
                           "--dump-dom", out.as_uri()], capture_output=True, text=True,
                          timeout=120, check=False)
    dom = done.stdout
    assert 'data-ready="yes"' in dom, done.stderr[-2000:]
    assert re.search(r'class="view on" data-depth="1"', dom)
    assert dom.count('class="node"') == sum(views(out.read_text(encoding="utf-8")).values())
    shown = re.findall(r'class="legend" data-metric="(\w+)" data-depth="(\d+)" '
                       r'style="display: block;"', dom)
    assert shown == [("macs", "1")]


def test_diff_page_marks_what_changed(tmp_path):
    """`diff --format html`: both graphs per depth; B's new blocks marked '+' and coloured,
    with their deltas; A has nothing removed; the totals' deltas."""
    out = tmp_path / "diff.html"
    result = CliRunner().invoke(main, ["diff", "resnet18", "resnet34", "--format", "html",
                                       "-o", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    a, b = cnncost.analyze("resnet18"), cnncost.analyze("resnet34")
    drawn = re.findall(r'class="view" data-depth="(\d+)" data-nodes="(\d+)"', page)
    assert ("2", str(len(a.collapse(2)))) in drawn and ("2", str(len(b.collapse(2)))) in drawn
    assert "+ layer1.block3" in page and "− " not in page.split("change from A to B")[0]
    assert "+ added (8)" in page  # 1 + 2 + 4 + 1 more blocks in ResNet-34, at depth 2
    assert "+10,108,160" in page  # params: 21,797,672 - 11,689,512
    assert "&quot;change&quot;: &quot;added&quot;" in page  # in the node's details


def test_diff_page_from_the_registry_rebuilds_the_graphs():
    """The formats registry renders a Diff alone: the graphs come from the analyses'
    files and variables."""
    from cnncost.comparison.diff import diff
    from cnncost.formats import render_as

    result = diff(cnncost.analyze("mobilenet_v2"), cnncost.analyze("mobilenet_v2",
                                                                     set={"width": 0.5}), 1)
    page = render_as("difference", "html", result)
    assert page.startswith("<!DOCTYPE html>") and "~ stage2" in page


def test_compare_and_gate_pages(tmp_path, monkeypatch):
    """compare --format html: the table's cells and the plot inline as SVG; gate --format
    html: the verdict and the table, a failing row marked and its status written out."""
    result = CliRunner().invoke(main, ["compare", "resnet50", "mobilenet_v2", "--format",
                                       "html"])
    assert result.exit_code == 0
    page = result.output
    assert page.startswith("<!DOCTYPE html>") and "<td>25,557,032</td>" in page
    if __import__("importlib").util.find_spec("matplotlib"):
        assert page.count("<svg") == 1 and "peak activation memory" in page
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cnncost.budget.yaml").write_text(
        "models:\n  - spec: lenet5\n    budgets: {params: 50k}\n")
    gate = CliRunner().invoke(main, ["gate", "--format", "html"])
    assert gate.exit_code == 1
    assert "gate failed: 1 fail" in gate.output
    assert '<tr class="fail"><td>lenet5</td><td>params</td>' in gate.output


def test_colour_by_measured_time_from_a_bench_file(tmp_path):
    """--bench FILE (cnncost bench --per-layer --format json): a 'measured time' colour
    scheme on every node, groups summing their layers' times."""
    pytest.importorskip("torch")
    bench = tmp_path / "bench.json"
    made = CliRunner().invoke(main, ["bench", "lenet5", "--per-layer", "--format", "json",
                                     "--runs", "3", "--device", "cpu", "-o", str(bench)])
    assert made.exit_code == 0, made.output
    result = report("lenet5", "--bench", str(bench), "--color", "latency")
    assert result.exit_code == 0, result.output
    page = result.output
    assert page.count("data-fill-latency=") == page.count('class="node"')
    assert 'data-metric="latency"' in page and "measured time" in page
    assert f"measured times per layer from {bench}" in page


def test_a_bench_file_of_another_spec_is_refused(tmp_path):
    bench = tmp_path / "bench.json"
    bench.write_text('{"kind": "cnncost.bench", "spec": {"name": "lenet5"}, "results": '
                     '[{"batch": 1, "per_layer": {"layers": [{"name": "c1.conv", '
                     '"time_ms": 0.1}]}}]}')
    result = report("resnet50", "--bench", str(bench))
    assert result.exit_code == 2
    assert "its layers are not those of resnet50 (spec there: lenet5)" in result.stderr
    assert report("resnet50", "--bench", str(bench), "--batch", "2").exit_code == 2
    assert report("lenet5", "--color", "latency").exit_code == 2  # needs --bench


def test_analyze_html_is_the_report_page():
    result = CliRunner().invoke(main, ["analyze", "mobilenet_v2", "--format", "html",
                                       "--depth", "2"])
    assert result.exit_code == 0
    assert result.output == report("mobilenet_v2", "--depth", "2").output
