"""Run directories: their layout and config (run.py), orbax checkpoints (checkpoint.py), the
one-owner lock (lock.py), the processes of a job (distributed.py), and reading a finished run
back (load.py). Below training, generation and evaluation, which all read or write runs.
"""
