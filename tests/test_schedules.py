import math

import pytest

from sklearn_gd._optim._schedules import make_schedule


def test_constant_and_adaptive_are_flat():
    for name in ("constant", "adaptive"):
        rate = make_schedule(name, 0.3)
        assert rate(0, 0) == rate(50, 10_000) == 0.3


def test_invscaling_formula():
    rate = make_schedule("invscaling", 0.2, power_t=0.25)
    assert rate(3, 99) == pytest.approx(0.2 / 100**0.25)


def test_invscaling_where_the_power_overflows():
    # 10.0 ** 310 overflows a float; the rate itself is representable or underflows
    assert make_schedule("invscaling", 1e300, power_t=310)(0, 9) == pytest.approx(1e-10)
    assert make_schedule("invscaling", 0.1, power_t=1e6)(0, 150) == 0.0


def test_cosine_decays_from_initial_to_zero():
    rate = make_schedule("cosine", 0.1, max_iter=10)
    assert rate(0, 0) == pytest.approx(0.1)
    assert rate(5, 0) == pytest.approx(0.05)
    assert rate(10, 0) == pytest.approx(0.0, abs=1e-15)
    assert rate(20, 0) == pytest.approx(0.0, abs=1e-15)
    assert rate(2, 0) == pytest.approx(0.05 * (1 + math.cos(math.pi * 0.2)))
    values = [rate(e, 0) for e in range(11)]
    assert values == sorted(values, reverse=True)


def test_unknown_schedule_is_rejected():
    with pytest.raises(ValueError, match="schedule"):
        make_schedule("nope", 0.1)
