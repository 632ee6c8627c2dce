"""Pure nn.Modules: the 1-D conditional U-Net, image encoders, critics and actors.

Nothing here knows about normalization, sampling or training; policies and algorithms
compose these modules.
"""
