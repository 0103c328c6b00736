"""daytona-lsp: run code from any LSP editor in a Daytona (or isolated local) sandbox."""

__version__ = "0.1.0"
