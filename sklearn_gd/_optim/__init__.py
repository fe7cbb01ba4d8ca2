"""The update rules: optimizers as init/update transforms, and learning-rate schedules."""
