"""Training: the one offline trainer, rollout evaluation, checkpoints (and the online loop)."""
