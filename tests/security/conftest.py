"""The security tier: each test is an attack from outside (a hostile folder's settings, a local TCP client, code in the
sandbox) that must fail. LSP tests reuse the pytest-lsp harness of tests/lsp."""

from tests.lsp.conftest import caps  # noqa: F401  (each LSP scenario once per client capability set)
