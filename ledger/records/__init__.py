"""Records: what an entry may say (pure).

The admin records (keys, roles, the published policy), in-toto statements and
our predicates, the release policy, and the shared text formats (digests, times,
hex). Imports only `ledger.core` and `ledger.errors`.
"""
