"""Training: losses, the fast CPU mode's feature cache, the trainer, and ITQ fitting. Qt-free."""
