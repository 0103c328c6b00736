"""The language server (pygls 2): one server for every LSP editor.

- :mod:`.server` — ``create_server()`` builds it (the one place), ``serve(tcp, host, port, token_file)`` runs it on
  stdio / TCP and closes every environment when the client goes away (shutdown, exit, stdin EOF, SIGTERM).
- :mod:`.tcp` — ``serve --tcp``: loopback only, the first message must be ``initialize`` with the token.
- :mod:`.settings_fields` — each setting declared once (default, type, bounds, scope, doc).
- :mod:`.settings` — the settings on the wire: invalid → warning + default, out of bounds → warning + clamped,
  user-only settings from a folder → warning + refused; README table / package.json derived from the declarations.
- :mod:`.runs` — ``RunService``: run ids, concurrent runs, cancellation, output cap, one environment per workspace
  folder and sandbox spec, prewarm. No LSP types.
- :mod:`.run_records` — a run's records (request, run, outcome, observer); :mod:`.environments` — building an
  environment from settings and the slot holding one per workspace folder and sandbox spec.
- :mod:`.documents` — document → code to run (language, selection dedent, line/column mapping, cells).
- :mod:`.features` — one module per LSP feature: ``code_actions``, ``code_lens``, ``commands``, ``diagnostics``,
  ``inlay_hints`` (a session run's value), ``input`` (interactive stdin), ``lifecycle``, ``output`` (notifications,
  log lines, progress).

Wire interface (see the repository's design notes): commands ``daytona.run {uri, range?, language?, args?, stdin?,
session?, detach?}`` → ``{runId, exitCode, output, truncated, durationMs, backend, changedFiles?, value?}``,
``daytona.cancel {runId?}``, ``daytona.resetSandbox {uri?}``, ``daytona.restartSession {uri?}`` → ``{restarted}``,
``daytona.sandboxInfo {uri?}`` → ``{backend, sandboxId?, state, sessions?}``, ``daytona.sendInput {runId, text,
eof?}``; inlay hints with a session run's value; code actions of kind
``source.daytona.run``; code lenses "▶ Run file" / "▶ Run cell"; with ``initializationOptions.outputNotifications``
the notifications ``daytona/runStarted``, ``daytona/output``, ``daytona/runFinished`` (with ``interactiveInput``
also ``daytona/inputRequested {runId, prompt}``); diagnostics with source
``daytona``.
"""
