"""The evidence domain: in-toto statements and our predicates. Pure: no I/O."""
