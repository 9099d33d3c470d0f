"""Reading and writing NIfTI volumes in their original geometry; ACDC folder layouts."""
