"""Stage 1, declare: models in Python (torch.nn names) or in a TOML spec."""
