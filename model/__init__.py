"""retint.model: colour maths, networks, losses, data, training, checkpoints.

This is the only package (with `retint.export`) that imports torch.
"""
