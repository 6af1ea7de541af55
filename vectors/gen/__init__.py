"""The generator of vectors/*.json, one module per output file (see ../generate.py)."""
