"""Each flow's steps in plain Python: what a run does, in order, without Prefect.

`flows/<name>.py` wraps `flows/jobs/<name>.py`'s function in a Prefect `@flow`; the `seneca`
commands call the function directly when no Prefect server is configured. One list of steps
either way: see `recorded.py`.
"""
