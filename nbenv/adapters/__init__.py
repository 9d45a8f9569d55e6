"""The only code that touches Docker, Compose, DVC, git, the network or the clock."""
