"""The desktop app: Qt views and one worker layer over the Qt-free core (model, index, training).

Nothing here may import torch at module level: the window must paint before torch is loaded. Work
that needs the model runs in :mod:`fph_desktop.gui.workers` and calls :mod:`fph_desktop.gui.tasks`,
which import the core lazily.
"""
