"""Which real-face evidence does the default model's reader use? One feature group at a time, and each left out."""
