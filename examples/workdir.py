# The sandbox's work directory (/workspace, also $HOME) survives between the runs of one editor session
# (`daytona-lsp run` starts a fresh one each time): run this file twice from your editor and the counter goes up.
# Nothing outside it, and nothing of your home directory, is visible.
from pathlib import Path

counter = Path("counter.txt")
runs = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(runs))
print(f"run number {runs} in {Path.cwd()}")
print("home directory:", Path.home())
