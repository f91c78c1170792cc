"""sdwebui/conformance.py on its own: the time budget, quick mode, the summary line and the Markdown table."""

from __future__ import annotations

import time

from sdwebui import conformance
from sdwebui.conformance import FAILS, SKIPPED_QUICK, SKIPPED_TIME, WORKS, Answer, Check, Row


class DeadRunner:
    """Every call fails as a closed port would; records the deadlines it was given."""

    def __init__(self) -> None:
        self.timeouts: list[float] = []

    def invoke(self, tool_name, params, timeout_s):
        self.timeouts.append(timeout_s)
        return Answer(error={"error_type": "InvokeConnectionError", "message": "refused"})

    def validate(self, timeout_s):
        self.timeouts.append(timeout_s)
        return Answer(messages=[{"result": True}])

    def options(self, tool_name, parameter, timeout_s):
        return self.invoke(tool_name, {}, timeout_s)

    def image(self, data, filename):
        return {"data": data}


def test_refused_credentials_stop_the_run_and_the_summary_counts_them():
    runner = DeadRunner()
    runner.validate = lambda timeout_s: Answer(error={"error_type": "X", "message": "no"})
    check = Check(runner, 10)
    rows = conformance.run_checks(check)
    assert [(r.case, r.result) for r in rows] == [("credentials", FAILS)]
    assert conformance.summary_line(rows, check) == "0 work, 0 unsupported, 1 fail on this server."


def test_a_case_gets_at_most_what_is_left_of_the_budget():
    check = Check(DeadRunner(), case_timeout_s=100, budget_s=30)
    assert 29 <= check.timeout_s <= 30
    check.started -= 25
    assert 4 <= check.timeout_s <= 5


def test_what_would_not_fit_is_skipped_with_its_need_and_quick_skips_the_model_switch():
    check = Check(DeadRunner(), case_timeout_s=10, budget_s=20, quick=True)
    check.generation_s = 8.0  # one generation took 8 s
    check.started = time.monotonic() - 11  # 9 s left
    by_name = {case.name: case for case in conformance.CASES}
    assert conformance.skipped(by_name["txt2img"], check) is None  # 8 s needed, 9 s left
    batch = conformance.skipped(by_name["batch of 2"], check)
    assert batch.result == SKIPPED_TIME and "would need about 16 s" in batch.message
    assert conformance.skipped(by_name["model switch"], check).result == SKIPPED_QUICK


def test_the_summary_names_the_server_the_skips_and_the_restored_model():
    check = Check(DeadRunner(), 10, resources={"server": "Forge"}, restored="rand-a [1]", switched=True)
    rows = [Row("a", WORKS, 0, ""), Row("b", "unsupported by this server", 0, ""), Row("c", SKIPPED_TIME, 0, "")]
    assert conformance.summary_line(rows, check) == (
        "1 work, 1 unsupported, 0 fail on Forge, 1 skipped; restored the active model 'rand-a [1]'.")
    report = conformance.report(rows, check)
    assert report["skipped"] == ["c"] and report["restored_model"] == "rand-a [1]" and report["fails"] == []


def test_a_failed_switch_back_is_said():
    check = Check(DeadRunner(), 10, original_model={"title": "rand-a"}, switched=True)
    assert "could not restore the active model 'rand-a'" in conformance.summary_line([], check)


def test_the_markdown_table_escapes_pipes():
    text = conformance.markdown_table([Row("x", WORKS, 1.5, "a | b")])
    assert text.splitlines()[-1] == "| x | works | 1.50 | a \\| b |"
