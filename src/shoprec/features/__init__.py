"""User, item and context features; text and image encoders."""
