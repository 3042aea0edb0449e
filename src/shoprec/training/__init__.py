"""The one torch training loop, schedules, early stopping, private training."""
