"""The core API itself: Variables, the protocol, and keeping the Daytona SDK off the import path."""

from __future__ import annotations

import subprocess
import sys

import pytest

from daytona_lsp.core import LANGUAGES, CodeEnvironment, CodeRunResult, SimpleContext, Variable
from daytona_lsp.core.environment import RunSpec, emit, not_enabled_result, resolve_variable


def test_variable_resolves_from_context_variables():
    assert Variable("image").resolve(SimpleContext({"image": "python:3.12"})) == "python:3.12"


def test_variable_falls_back_to_default_then_factory():
    assert Variable("k", default=None).resolve(SimpleContext({})) is None
    calls = []
    var = Variable("k", default_factory=lambda: calls.append(1) or "made")
    assert var.resolve(None) == "made"
    assert var.resolve(None) == "made"
    assert len(calls) == 2, "the factory runs on every resolution"


def test_missing_variable_without_default_names_the_variable():
    with pytest.raises(KeyError) as info:
        Variable("api_key").resolve(SimpleContext({}))
    assert info.value.args[0] == "Context variable 'api_key' not found and no default provided"


def test_variable_rejects_both_default_and_factory():
    with pytest.raises(ValueError):
        Variable("k", default=1, default_factory=lambda: 2)


def test_resolve_variable_passes_plain_values_through():
    assert resolve_variable("plain", None) == "plain"
    assert resolve_variable(Variable("x"), SimpleContext({"x": 3})) == 3


def test_not_enabled_result_lists_available_languages():
    result = not_enabled_result("ruby", ("python", "bash"))
    assert result.exit_code == 2
    assert "'ruby'" in result.output and "['python', 'bash']" in result.output


async def test_emit_accepts_sync_and_async_callbacks():
    seen: list[tuple[str, str]] = []

    async def async_cb(stream, text):
        seen.append((stream, text))

    await emit(lambda s, t: seen.append((s, t)), "stdout", "a")
    await emit(async_cb, "stderr", "b")
    await emit(async_cb, "stdout", "")  # empty chunks are not delivered
    await emit(None, "stdout", "c")
    assert seen == [("stdout", "a"), ("stderr", "b")]


async def test_protocol_subclass_gets_async_context_manager():
    class Echo(CodeEnvironment):
        closed = 0

        @property
        def supported_languages(self):
            return LANGUAGES

        async def run(self, code, language, *, context=None, on_output=None):
            return CodeRunResult(output=code, exit_code=0)

        async def aclose(self):
            self.closed += 1

    async with Echo() as env:
        assert isinstance(env, CodeEnvironment)
        assert (await env.run("x", "python")).output == "x"
    assert env.closed == 1


def test_importing_core_does_not_import_the_daytona_sdk():
    code = "import sys, daytona_lsp.core; print('daytona' in sys.modules, 'pygls' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", "False"]


async def test_a_failing_output_callback_does_not_break_the_caller(caplog):
    def broken(stream, text):
        raise RuntimeError("boom")

    async def broken_async(stream, text):
        raise RuntimeError("boom")

    await emit(broken, "stdout", "x")
    await emit(broken_async, "stdout", "x")
    assert caplog.text.count("output callback failed") == 2


async def test_run_is_a_thin_call_of_execute_with_a_snippet_spec():
    seen: list[RunSpec] = []

    class Recorder(CodeEnvironment):
        @property
        def supported_languages(self):
            return LANGUAGES

        async def execute(self, spec, on_output=None, *, context=None):
            seen.append(spec)
            await emit(on_output, "stdout", spec.code)
            return CodeRunResult(output=spec.code, exit_code=0)

    chunks: list[str] = []
    result = await Recorder().run("x = 1", "python", on_output=lambda s, t: chunks.append(t))
    assert (result.output, chunks) == ("x = 1", ["x = 1"])
    assert seen == [RunSpec(code="x = 1", language="python")]
    assert (seen[0].path, seen[0].args, seen[0].stdin, seen[0].session) == (None, (), None, None)
