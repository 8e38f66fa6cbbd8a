"""The HTTP service (DESIGN.md §4): the only code that speaks HTTP."""
