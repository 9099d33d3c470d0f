"""Training the seeds' models on ACDC: data, losses, loop, evaluation, experiments."""
