"""N-Unet MONAI bundle: project code (data, transforms, networks, losses, engine glue, evaluation)."""
