# %% A first cell: who and where are we?
import platform
import sys

print(f"Hello from {platform.system()} with Python {sys.version.split()[0]}")

# %% A second cell: a little arithmetic
squares = [n * n for n in range(1, 11)]
print("squares:", squares)
print("sum:", sum(squares))
