"""Stage 5, print: one SymPy printer per backend (NumPy, torch, LaTeX, plain text), sharing StatementPrinter."""
