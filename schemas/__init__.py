"""The contract files of `schemas/`, installed as the package `ledger.schemas` (see pyproject.toml).

JSON Schemas, PREDICATES.md, POLICY.md and the example policy are package data, so an
installed evledger finds them with importlib.resources wherever it runs:
`importlib.resources.files("ledger.schemas") / "policy.example.toml"`.
"""
