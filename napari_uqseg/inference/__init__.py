"""Monte-Carlo-dropout inference with streaming uncertainty statistics."""
