# The sandbox sees your project folder at its real path; what a run writes lands in the sandbox's own copy of it (kept
# while the sandbox lives, listed as the run's changed files), never in your files. Run this file twice from your
# editor and the counter goes up (`daytona-lsp run` starts a fresh sandbox each time; --write-back keeps the file).
# Nothing outside the folder, and nothing of your home directory, is visible.
from pathlib import Path

counter = Path("counter.txt")
runs = int(counter.read_text()) + 1 if counter.exists() else 1
counter.write_text(str(runs))
print(f"run number {runs} in {Path.cwd()}")
print("home directory:", Path.home())
