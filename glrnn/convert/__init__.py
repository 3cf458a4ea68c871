"""Weights in and out of glrnn: recurrentgemma's Griffin and Hawk checkpoints
(``recurrentgemma.py``: the mapping, pure) and safetensors files (``store.py``: every file read or
written); ``python -m glrnn.convert`` is the command line (``__main__.py``)."""
