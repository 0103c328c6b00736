"""Interactive stdin in the local sandbox (real bubblewrap): preset, fed line by line through an InputChannel, or
none (EOF at once, and a note when the program did read)."""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import time
from pathlib import Path

import pytest

from daytona_lsp.core.environment import STDIN_CLOSED_NOTE, InputChannel, InputClosed, RunSpec
from daytona_lsp.core.local import LocalCodeEnvironment

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="bubblewrap needs Linux")

TSX = os.environ.get("DAYTONA_LSP_TSX")

# each asks for a name (prompt without a newline), greets it, then reads the rest of stdin to its end
ASK = {
    "python": "import sys\nname = input('name? ')\nprint('hello', name)\nprint('rest', repr(sys.stdin.read()))\n",
    "bash": "printf 'name? '\nread -r name\necho \"hello $name\"\nprintf 'rest %s\\n' \"$(cat)\"\n",
    "javascript": (
        "const rl = require('readline').createInterface({input: process.stdin, output: process.stdout});\n"
        "const lines = [];\n"
        "rl.question('name? ', (a) => { console.log('hello', a); rl.on('line', (l) => lines.push(l)); });\n"
        "rl.on('close', () => console.log('rest', JSON.stringify(lines.join('\\n'))));\n"
    ),
    "typescript": (
        "import * as readline from 'readline';\n"
        "const rl = readline.createInterface({input: process.stdin, output: process.stdout});\n"
        "const lines: string[] = [];\n"
        "rl.question('name? ', (a: string) => { console.log('hello', a); rl.on('line', (l: string) => lines.push(l)); });\n"
        "rl.on('close', () => console.log('rest', JSON.stringify(lines.join('\\n'))));\n"
    ),
}
NO_READ = {
    "python": "print('hi')\n",
    "bash": "echo hi\n",
    "javascript": "console.log('hi')\n",
    "typescript": "const s: string = 'hi'\nconsole.log(s)\n",
}


@pytest.fixture(params=list(ASK))
def language(request):
    if request.param == "typescript" and not TSX:
        pytest.skip("DAYTONA_LSP_TSX not set (bash scripts/setup-tsx installs tsx; scripts/test sets it)")
    return request.param


@pytest.fixture
async def env(monkeypatch):
    if TSX:
        node = shutil.which("node")
        assert node is not None
        monkeypatch.setenv("PATH", f"{Path(TSX).parent}:{Path(node).parent}:{os.environ.get('PATH', '')}")
    environment = LocalCodeEnvironment(timeout=20)
    yield environment
    await environment.aclose()


async def test_preset_stdin_is_read_by_input_read_and_readline(env, language):
    result = await env.execute(RunSpec(code=ASK[language], language=language, stdin="Ann\nb\nc\n"))
    assert result.exit_code == 0, result.output
    assert "hello Ann" in result.output
    assert "rest" in result.output and "b" in result.output.split("rest", 1)[1]
    assert STDIN_CLOSED_NOTE not in result.output


async def test_interactive_input_answers_each_wait_with_its_prompt_and_is_echoed(env, language):
    prompts: list[str] = []
    answers = iter(["Ann", "more"])

    async def answer(prompt: str) -> None:
        prompts.append(prompt)
        text = next(answers, None)
        if text is None:
            await channel.close()
        else:
            await channel.send(text)

    channel = InputChannel(answer)
    result = await env.execute(RunSpec(code=ASK[language], language=language, input=channel))
    assert result.exit_code == 0, result.output
    assert prompts[0] == "name? "
    assert len(prompts) == 3, prompts  # name, the next line, then EOF
    out = result.output
    assert out.index("name? Ann\n") < out.index("hello Ann") < out.index("more\n") < out.index("rest")
    assert "more" in out.split("rest", 1)[1]
    assert STDIN_CLOSED_NOTE not in out
    assert not channel.is_open
    with pytest.raises(InputClosed):
        await channel.send("late")


async def test_without_input_the_program_reads_eof_at_once_and_the_output_says_so(env, language):
    started = time.monotonic()
    result = await env.execute(RunSpec(code=ASK[language], language=language))
    assert time.monotonic() - started < 2 + (5 if language == "typescript" else 0)  # tsx's own start-up
    assert result.output.startswith("name? "), result.output
    assert result.output.rstrip().endswith(STDIN_CLOSED_NOTE), result.output
    assert "hello Ann" not in result.output


async def test_a_program_that_never_reads_gets_no_note(env, language):
    result = await env.execute(RunSpec(code=NO_READ[language], language=language))
    assert (result.exit_code, result.output) == (0, "hi\n")


async def test_a_program_that_sleeps_before_reading_still_gets_eof_and_the_note(env):
    code = "import time\ntime.sleep(0.3)\nimport sys\nprint(repr(sys.stdin.read()))\n"
    result = await env.execute(RunSpec(code=code, language="python"))
    assert result.output == f"''\n{STDIN_CLOSED_NOTE}\n"


async def test_input_sent_before_the_program_starts_is_kept_for_it(env):
    channel = InputChannel()
    await channel.send("early")
    await channel.close()
    result = await env.execute(
        RunSpec(code="import sys\nprint(repr(sys.stdin.read()))\n", language="python", input=channel)
    )
    assert result.output == "early\n'early\\n'\n"


async def test_preset_stdin_comes_first_then_interactive_input(env):
    async def answer(prompt: str) -> None:
        await channel.send("typed")
        await channel.close()

    channel = InputChannel(answer)
    code = "import sys\nprint(repr(sys.stdin.read()))\n"
    result = await env.execute(RunSpec(code=code, language="python", stdin="preset\n", input=channel))
    assert result.output.endswith("'preset\\ntyped\\n'\n"), result.output


async def test_concurrent_runs_see_only_their_own_waits(env):
    """One run waits for input; another in the same container, busy with no stdin read, is never asked."""
    asked: list[str] = []
    waiting = asyncio.Event()

    async def ask_a(prompt: str) -> None:
        asked.append("a:" + prompt)
        waiting.set()

    async def ask_b(prompt: str) -> None:
        asked.append("b:" + prompt)

    a = InputChannel(ask_a)
    b = InputChannel(ask_b)
    first = asyncio.ensure_future(env.execute(RunSpec(code="print(input('A? '))\n", language="python", input=a)))
    await asyncio.wait_for(waiting.wait(), 15)
    second = await env.execute(
        RunSpec(code="import time\ntime.sleep(0.5)\nprint('b done')\n", language="python", input=b)
    )
    await a.send("x")
    result = await first
    assert asked == ["a:A? "]
    assert second.output == "b done\n"
    assert result.output == "A? x\nx\n"


async def test_input_over_the_cap_is_refused_and_the_run_goes_on(env):
    from daytona_lsp.core.environment import MAX_INPUT_BYTES

    async def answer(prompt: str) -> None:
        with pytest.raises(ValueError, match="larger than"):
            await channel.send("x" * (MAX_INPUT_BYTES + 1))
        await channel.send("ok")

    channel = InputChannel(answer)
    result = await env.execute(RunSpec(code="print(input())\n", language="python", input=channel))
    assert result.output == "ok\nok\n"


async def test_input_after_eof_is_refused_while_the_program_still_runs(env):
    refused: list[str] = []

    async def on_output(stream: str, text: str) -> None:
        if "eof seen" in text:  # the program has read EOF and goes on
            try:
                await channel.send("late")
            except InputClosed as exc:
                refused.append(str(exc))

    channel = InputChannel(lambda prompt: channel.close())
    code = "import sys, time\nsys.stdin.read()\nprint('eof seen', flush=True)\ntime.sleep(0.2)\nprint('done')\n"
    result = await env.execute(RunSpec(code=code, language="python", input=channel), on_output)
    assert result.output == "eof seen\ndone\n"
    assert refused == ["the run's stdin was closed"]
