"""Writing files so that a crash never leaves a half-written one: atomic text writes and checkpoints."""
