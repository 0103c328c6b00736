# Runs, prints a little, then fails two calls deep: the editor marks line 10 (the raise)
# and the call sites on lines 15 and 18 as related locations.


def parse_age(text: str) -> int:
    age = int(text)
    if age < 0:
        # a clear message beats a silent wrong answer
        message = f"age must not be negative, got {age}"
        raise ValueError(message)
    return age


def average_age(texts: list[str]) -> float:
    return sum(parse_age(t) for t in texts) / len(texts)


print("average:", average_age(["31", "27", "-4"]))
