"""The latency measurement behind `verify` (and `gate`'s measured metrics): statistics,
run counts, time budget, environment. No assertion on absolute times."""

from __future__ import annotations

import statistics

import pytest

torch = pytest.importorskip("torch")
from cnncost.pytorch import measure  # noqa: E402

pytestmark = pytest.mark.torch


def test_summarize_statistics():
    times = [float(t) for t in range(1, 101)]  # 1..100 ms
    lat = measure.summarize(times, batch=4, env={"device": "cpu"}, first_ms=250.0)
    assert lat.median_ms == 50.5
    assert lat.p10_ms == pytest.approx(10.9) and lat.p90_ms == pytest.approx(90.1)
    q = statistics.quantiles(times, n=4, method="inclusive")
    assert lat.iqr_ms == pytest.approx(q[2] - q[0]) == pytest.approx(49.5)
    assert lat.samples == 100 and lat.first_ms == 250.0
    assert lat.images_per_s == pytest.approx(4 * 1000 / 50.5)


def test_summarize_one_sample_and_none():
    lat = measure.summarize([2.0], batch=1, env={})
    assert (lat.median_ms, lat.p10_ms, lat.p90_ms, lat.iqr_ms) == (2.0, 2.0, 2.0, 0.0)
    with pytest.raises(ValueError):
        measure.summarize([], batch=1, env={})


class Counting(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def forward(self, x):
        self.calls += 1
        return x * 2


def test_time_model_counts_warmup_and_runs():
    model = Counting()
    lat = measure.time_model(model, torch.ones(3, 2), runs=7, warmup=4, warmup_s=0.0)
    assert lat.samples == 7
    assert model.calls == 1 + 4 + 7  # first call, warm-up, timed runs
    assert not model.training
    assert lat.env["batch"] == 3 and lat.env["device"] == "cpu"


def test_time_budget_stops_early_but_keeps_three_runs():
    class Slow(torch.nn.Module):
        def forward(self, x):
            import time

            time.sleep(0.02)
            return x

    lat = measure.time_model(Slow(), torch.ones(1), runs=1000, warmup=0, warmup_s=0.0,
                             budget_s=0.05)
    assert 3 <= lat.samples < 20


def test_measure_latency_of_a_spec():
    lat = measure.measure_latency("lenet5", batch=2, device="cpu", runs=3, warmup=1)
    assert lat.samples == 3 and lat.median_ms > 0
    assert lat.env["dtype"] == "fp32" and lat.env["torch"] == torch.__version__
    with pytest.raises(ValueError, match="meta"):
        measure.measure_latency("lenet5", device="meta")
    with pytest.raises(ValueError, match="int8"):
        measure.measure_latency("lenet5", dtype="int8")
