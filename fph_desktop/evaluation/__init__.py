"""Retrieval evaluation: Hamming distances, mAP, tie-aware mAP, precision@k and PR by radius."""
