# Output arrives while the code runs: watch the lines appear one by one.
import time

for step in range(1, 6):
    print(f"step {step}/5", flush=True)
    time.sleep(0.3)
print("done")
