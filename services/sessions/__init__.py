"""Session checkpoints, resume and abandonment risk."""
