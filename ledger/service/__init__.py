"""The HTTP service (docs/http-api.md): the only code that speaks HTTP."""
