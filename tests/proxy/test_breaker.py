"""The circuit breaker's state machine, driven with explicit time."""

from strangler.proxy.breaker import CircuitBreaker


def test_opens_after_consecutive_failures_and_probes_after_cooldown():
    breaker = CircuitBreaker(failures=3, error_rate=1.0, window=100, cooldown=5)
    for _ in range(2):
        breaker.record(False, now=0)
    assert breaker.allow(0) and breaker.state == "closed"
    breaker.record(False, now=1)
    assert breaker.state == "open" and not breaker.allow(3)
    assert not breaker.probe_due(5.9), "no probe before the cooldown"
    assert breaker.probe_due(6.5) and breaker.state == "half_open"
    assert not breaker.probe_due(6.6), "one probe at a time"
    assert not breaker.allow(6.6), "user requests are never the probe"
    breaker.probe_result(True, now=6.7)
    assert breaker.state == "closed" and breaker.allow(6.8)


def test_a_failed_probe_opens_it_for_another_cooldown():
    breaker = CircuitBreaker(failures=1, cooldown=2)
    breaker.record(False, now=0)
    assert breaker.probe_due(2.5)
    breaker.probe_result(False, now=2.6)
    assert breaker.state == "open"
    assert not breaker.probe_due(4.0) and breaker.probe_due(4.7)


def test_late_answers_do_not_move_an_open_breaker():
    breaker = CircuitBreaker(failures=1, cooldown=2)
    breaker.record(False, now=0)
    breaker.record(True, now=0.5)
    assert breaker.state == "open"


def test_opens_on_error_rate_without_a_streak():
    breaker = CircuitBreaker(failures=100, error_rate=0.5, window=10, cooldown=1)
    for i in range(9):
        breaker.record(i % 2 == 0, now=i)
    assert breaker.state == "closed"
    breaker.record(False, now=10)  # 5 failures in the last 10
    assert breaker.state == "open"


def test_successes_reset_the_streak():
    breaker = CircuitBreaker(failures=3, error_rate=1.0, window=10)
    for outcome in (False, False, True, False, False, True):
        breaker.record(outcome, now=0)
    assert breaker.state == "closed"


def test_old_failures_leave_the_window():
    breaker = CircuitBreaker(failures=100, error_rate=0.75, window=4, cooldown=1)
    for outcome in (False, True, False, True, True, True, False, True):
        breaker.record(outcome, now=0)
    assert breaker.state == "closed" and breaker.errors == 1
