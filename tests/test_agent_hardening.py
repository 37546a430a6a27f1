"""The agent client under bad input: a run that cannot be sent, wrongly typed options (issue 15).

A request the kernel can never get (a lone surrogate does not encode as UTF-8)
or options of the wrong type must end as a failed run in the runner's shape
(``finished``, exit code -1, the reason on stderr) and leave the client usable.
"""

from __future__ import annotations

import asyncio

import pytest

from backend_kernel_provisioner.agent import AgentKernel
from backend_kernel_provisioner.agent.run import BadRequest, check_request

#: Hang guard for every call into a kernel (a wedged client would wait forever).
GUARD = 120


async def call(kernel: AgentKernel, *args, **kwargs) -> dict:
    return await asyncio.wait_for(kernel.execute(*args, flush_timeout=60, **kwargs), GUARD)


def stderr_of(result: dict) -> str:
    return "".join(text for kind, text in result["console"] if kind == "stderr")


@pytest.mark.parametrize(
    "mode, text, opts, message",
    [
        ("batch", "", {"build": 5}, "batch option 'build' must be a string (a shell command or '*'), got int 5"),
        ("batch", "", {"exec": ["a.out"]}, "batch option 'exec' must be a string"),
        ("batch", "", {"clean": {"x": 1}}, "batch option 'clean' must be a string"),
        ("batch", "", ["build"], "opts must be a dict (a JSON object), got list"),
        ("query", "", "flags", "opts must be a dict (a JSON object), got str"),
        ("query", None, None, "the code of a query must be a string, got NoneType"),
        ("query", b"print(1)", {}, "the code of a query must be a string, got bytes"),
    ],
)
def test_wrongly_typed_requests_name_the_field_and_type(mode, text, opts, message) -> None:
    with pytest.raises(BadRequest) as info:
        check_request(mode, text, opts)
    assert message in str(info.value)


def test_well_typed_requests_pass() -> None:
    assert check_request("batch", "", None) == {}
    assert check_request("batch", "", {"build": "*", "exec": None, "other": 3}) == {"build": "*", "exec": None,
                                                                                     "other": 3}
    assert check_request("query", "print(1)", {}) == {}


@pytest.mark.kernel
async def test_unsendable_query_ends_the_run_and_the_client_stays_usable() -> None:
    async with await AgentKernel.start("python") as kernel:
        failed = await call(kernel, "r1", "query", "print('\ud800')")
        assert (failed["runId"], failed["status"], failed["exitCode"]) == ("r1", "finished", -1)
        assert "could not send the run's code to the kernel: UnicodeEncodeError" in stderr_of(failed)
        assert (await kernel.check_status())["running_run"] is None

        after = await call(kernel, "r2", "query", "print('still here')")
        assert (after["status"], after["exitCode"]) == ("finished", 0)
        assert after["console"] == [["stdout", "still here\n"]]

        # Wrongly typed requests: answered as failed runs, the kernel untouched.
        bad = await call(kernel, "r3", "batch", "", opts={"build": 5})
        assert (bad["runId"], bad["status"], bad["exitCode"]) == ("r3", "finished", -1)
        assert bad["console"] == [["stderr", "bad batch request: batch option 'build' must be a string "
                                             "(a shell command or '*'), got int 5\n"]]
        bad = await call(kernel, "r4", "query", None)
        assert bad["status"] == "finished" and "the code of a query must be a string" in stderr_of(bad)
        assert (await kernel.check_status())["running_run"] is None

        # An input that cannot be sent: the run keeps waiting, says why, and takes the next answer.
        waiting = await call(kernel, "r5", "query", "print('got', input('name? '))")
        assert waiting["status"] == "waiting-input"
        again = await call(kernel, "r5", "input", "\ud800")
        assert again["status"] == "waiting-input"
        assert "could not send the input to the kernel: UnicodeEncodeError" in stderr_of(again)
        done = await call(kernel, "r5", "input", "bob")
        assert (done["status"], done["exitCode"]) == ("finished", 0)
        assert done["console"] == [["stdout", "got bob\n"]]


@pytest.mark.kernel
async def test_unsendable_batch_step_ends_the_run_after_the_steps_before_it() -> None:
    async with await AgentKernel.start("python") as kernel:
        built = await call(kernel, "b1", "batch", "", opts={"build": "echo built", "exec": "echo \ud800"})
        assert (built["status"], built["exitCode"]) == ("build-finished", 0)
        failed = await call(kernel, "b1", "continue", "")
        assert (failed["status"], failed["exitCode"]) == ("finished", -1)
        assert "could not send the run's code to the kernel: UnicodeEncodeError" in stderr_of(failed)
        assert (await kernel.check_status())["running_run"] is None

        after = await call(kernel, "b2", "batch", "", opts={"exec": "echo fine"})
        assert (after["status"], after["exitCode"]) == ("finished", 0)
        assert "fine" in "".join(text for kind, text in after["console"] if kind == "stdout")
